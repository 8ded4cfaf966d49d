package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Names Find looks for in the working directory.
const (
	DefaultFile = "gatehouse.yaml"
	Procfile    = "Procfile"
)

// ErrNoConfig is returned by Find when there is nothing to run.
var ErrNoConfig = errors.New("no config")

// FromCommand is the zero-config path "gatehouse run -- node server.js":
// one app named "web" running argv with every default, rooted in the
// working directory.
func FromCommand(argv []string) *Config {
	c := oneApp(Command(slices.Clone(argv)))
	c.Resolve("")
	return c
}

// oneApp is the config of a single app "web" running cmd, unresolved.
func oneApp(cmd Command) *Config {
	c := Default()
	app := NewApp("web")
	app.Command = cmd
	c.Apps = map[string]*App{"web": app}
	c.Order = []string{"web"}
	c.implicitRoutes()
	return c
}

// FromProcfile builds the one-app config from a Procfile's web: line, run
// with sh -c as Procfile runners do, so $PORT and pipes work. The app's
// directory is the Procfile's.
func FromProcfile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read procfile: %w", err)
	}
	line, err := procfileWeb(path, data)
	if err != nil {
		return nil, err
	}
	c := oneApp(ShellCommand(line))
	c.Resolve(filepath.Dir(path))
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// procfileWeb returns the command of the "web:" process type.
func procfileWeb(path string, data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(text, ":")
		if !ok || strings.TrimSpace(name) != "web" {
			continue
		}
		if cmd = strings.TrimSpace(cmd); cmd == "" {
			return "", fmt.Errorf("%s:%d: web: has no command", path, n)
		}
		return cmd, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read procfile: %w", err)
	}
	return "", fmt.Errorf("%s: no \"web:\" line, which gatehouse runs", path)
}

// Find returns the config to run, looking in the documented order: an
// explicit -c FILE; else ./gatehouse.yaml; else the command after "--"
// (argv); else ./Procfile's web: line. With none of them it returns an
// error wrapping ErrNoConfig that names what it looked for.
func Find(explicit string, argv []string) (*Config, error) {
	if explicit != "" {
		return Load(explicit)
	}
	if ok, err := exists(DefaultFile); err != nil || ok {
		if err != nil {
			return nil, fmt.Errorf("find config: %w", err)
		}
		return Load(DefaultFile)
	}
	if len(argv) > 0 {
		c := FromCommand(argv)
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, nil
	}
	if ok, err := exists(Procfile); err != nil || ok {
		if err != nil {
			return nil, fmt.Errorf("find config: %w", err)
		}
		return FromProcfile(Procfile)
	}
	return nil, fmt.Errorf("%w: looked for -c FILE, ./%s, a command after -- (gatehouse run -- node server.js) and ./%s with a web: line",
		ErrNoConfig, DefaultFile, Procfile)
}

// exists reports whether path exists; an error other than "not there"
// (a permission problem, say) is returned rather than skipped, since
// skipping would silently run a different config.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// AdminAddr is the host:port a client dials to reach the admin API: Admin,
// or the default when unset, with an unspecified host (":9901",
// "0.0.0.0:9901") replaced by loopback, which reaches the same listener.
func (c *Config) AdminAddr() string {
	addr := DefaultAdmin
	if c != nil && c.Admin != "" {
		addr = c.Admin
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
