package deploy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// repoRoot is the repository, the build context of every Dockerfile here.
const repoRoot = ".."

// entrypointPrefix is how every image starts gatehouse; the fourth word
// is the config's path in the image.
var entrypointPrefix = []string{"/usr/local/bin/gatehouse", "run", "-c"}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, COPY, ...
	args string
	line int
}

// parseDockerfile reads instructions the way docker does, lightly:
// comments (parser directives included) and blank lines dropped,
// backslash continuations joined. It returns the final stage's
// instructions (those after the last FROM, that FROM included) and every
// instruction, for the checks that look at all stages.
func parseDockerfile(data string) (final, all []instruction) {
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(data, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		all = append(all, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	for i, in := range all {
		if in.cmd == "FROM" {
			final = all[i:]
		}
	}
	return final, all
}

// copyArgs splits a COPY's arguments into its flags (--from, --chown)
// and its sources and destination.
func copyArgs(args string) (flags map[string]string, srcs []string, dst string) {
	flags = map[string]string{}
	var rest []string
	for f := range strings.FieldsSeq(args) {
		if k, ok := strings.CutPrefix(f, "--"); ok {
			name, val, _ := strings.Cut(k, "=")
			flags[name] = val
			continue
		}
		rest = append(rest, f)
	}
	if len(rest) == 0 {
		return flags, nil, ""
	}
	return flags, rest[:len(rest)-1], rest[len(rest)-1]
}

// image is what checkDockerfile learns of an image: its user, its
// entrypoint and the config it ships.
type image struct {
	uid        int
	entrypoint []string
	cfg        *config.Config
}

// checkDockerfile checks a Dockerfile's invariants: the final stage runs
// gatehouse run -c CONFIG as its exec-form ENTRYPOINT, as a numeric
// non-root USER, stops with SIGTERM, exposes the public port, makes
// data_dir, and CONFIG is copied from a file of the repository that
// gatehouse's loader accepts. Every file COPY takes from the build
// context exists.
func checkDockerfile(data string) (image, []error) {
	var img image
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	final, all := parseDockerfile(data)
	if len(final) == 0 {
		fail("no FROM")
		return img, errs
	}
	for _, in := range all {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		flags, srcs, _ := copyArgs(in.args)
		if _, ok := flags["from"]; ok {
			continue
		}
		for _, src := range srcs {
			// A build argument's path ($TARGETPLATFORM/...) exists only
			// in the build's context: TestReleaseImage checks those.
			if strings.Contains(src, "$") {
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				fail("line %d: %s copies %s, which is not in the repository: %v", in.line, in.cmd, src, err)
			}
		}
	}
	last := func(cmd string) (instruction, bool) {
		for i := len(final) - 1; i >= 0; i-- {
			if final[i].cmd == cmd {
				return final[i], true
			}
		}
		fail("the final stage has no %s", cmd)
		return instruction{}, false
	}
	if in, ok := last("ENTRYPOINT"); ok {
		if err := json.Unmarshal([]byte(in.args), &img.entrypoint); err != nil {
			fail("line %d: ENTRYPOINT must be the exec form (a JSON list), so that gatehouse is PID 1 and gets the stop signal itself: %v", in.line, err)
		} else if len(img.entrypoint) != len(entrypointPrefix)+1 || !slices.Equal(img.entrypoint[:len(entrypointPrefix)], entrypointPrefix) {
			fail("line %d: ENTRYPOINT %q, want %q followed by the config's path", in.line, img.entrypoint, entrypointPrefix)
		}
	}
	if in, ok := last("USER"); ok {
		user, _, _ := strings.Cut(in.args, ":")
		uid, err := strconv.Atoi(user)
		switch {
		case err != nil:
			fail("line %d: USER %q must be numeric, so that Kubernetes' runAsNonRoot can verify it", in.line, in.args)
		case uid == 0:
			fail("line %d: USER is root", in.line)
		}
		img.uid = uid
	}
	if in, ok := last("STOPSIGNAL"); ok && in.args != "SIGTERM" {
		fail("line %d: STOPSIGNAL %s, want SIGTERM (gatehouse's graceful stop)", in.line, in.args)
	}
	if len(img.entrypoint) == len(entrypointPrefix)+1 {
		img.cfg = imageConfig(final, img.entrypoint[len(entrypointPrefix)], fail)
	}
	if img.cfg != nil {
		checkImageLayout(final, img.cfg, fail)
	}
	return img, errs
}

// imageConfig loads the repository file the final stage copies to path.
func imageConfig(final []instruction, path string, fail func(string, ...any)) *config.Config {
	for _, in := range final {
		flags, srcs, dst := copyArgs(in.args)
		if in.cmd != "COPY" || dst != path || len(srcs) != 1 || flags["from"] != "" {
			continue
		}
		cfg, err := config.Load(filepath.Join(repoRoot, srcs[0]))
		if err != nil {
			fail("line %d: the image's config %s: %v", in.line, srcs[0], err)
		}
		return cfg
	}
	fail("the final stage copies no file of the repository to %s, the entrypoint's config", path)
	return nil
}

// checkImageLayout checks that the image exposes the config's public
// port and makes its data_dir (a COPY's destination or a RUN's mkdir).
func checkImageLayout(final []instruction, cfg *config.Config, fail func(string, ...any)) {
	_, port, _ := net.SplitHostPort(cfg.Listen)
	exposed, made := false, false
	for _, in := range final {
		switch in.cmd {
		case "EXPOSE":
			exposed = exposed || slices.Contains(strings.Fields(in.args), port)
		case "COPY":
			_, _, dst := copyArgs(in.args)
			made = made || filepath.Clean(dst) == cfg.DataDir
		case "RUN":
			made = made || strings.Contains(in.args, "mkdir") && strings.Contains(in.args, cfg.DataDir)
		}
	}
	if !exposed {
		fail("the final stage does not EXPOSE %s, the config's listen port", port)
	}
	if !made {
		fail("the final stage does not make data_dir %s for its user", cfg.DataDir)
	}
}

func TestDockerfiles(t *testing.T) {
	for _, path := range []string{"Dockerfile", "deploy/docker/node/Dockerfile"} {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(repoRoot, path))
			if err != nil {
				t.Fatal(err)
			}
			if _, errs := checkDockerfile(string(data)); len(errs) > 0 {
				t.Errorf("%s:\n%v", path, errs)
			}
		})
	}
}

// The checks bite: a Dockerfile that breaks one invariant fails with the
// problem named.
func TestDockerfileCheckRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"root user", "USER 65532:65532", "USER 0", "USER is root"},
		{"named user", "USER 65532:65532", "USER nonroot", "must be numeric"},
		{"shell-form entrypoint", `ENTRYPOINT ["/usr/local/bin/gatehouse", "run", "-c", "/etc/gatehouse/gatehouse.yaml"]`,
			"ENTRYPOINT /usr/local/bin/gatehouse run -c /etc/gatehouse/gatehouse.yaml", "exec form"},
		{"missing config", "COPY deploy/docker/gatehouse.yaml", "COPY deploy/docker/nonesuch.yaml", "not in the repository"},
		{"stop signal", "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", "want SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(good), tt.old) {
				t.Fatalf("Dockerfile has no %q to change", tt.old)
			}
			_, errs := checkDockerfile(strings.Replace(string(good), tt.old, tt.new, 1))
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tt.want) }) {
				t.Errorf("errors %v, want one containing %q", errs, tt.want)
			}
		})
	}
}

func TestParseDockerfileJoinsContinuations(t *testing.T) {
	_, all := parseDockerfile("# syntax=docker/dockerfile:1\nFROM a AS b\n\nRUN x \\\n && y\ncopy --from=b /x /y\n")
	want := []instruction{
		{cmd: "FROM", args: "a AS b", line: 2},
		{cmd: "RUN", args: "x  && y", line: 4},
		{cmd: "COPY", args: "--from=b /x /y", line: 6},
	}
	if d := cmp.Diff(want, all, cmp.AllowUnexported(instruction{})); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
