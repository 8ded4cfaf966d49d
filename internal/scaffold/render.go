package scaffold

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Defaults the rendered config writes out, so that the user sees them.
const (
	// Listen is the public listener's address.
	Listen = ":8080"
	// Admin is the admin listener's address.
	Admin = "127.0.0.1:9901"
	// ConfigFile is the file init writes.
	ConfigFile = "gatehouse.yaml"
)

// Order is how Detect decides, a rule a line, first match winning: the
// config's comment lists it.
var Order = []string{
	"Procfile: its web: line, run as Procfile runners run it.",
	"package.json: scripts.start (node itself when that is a node command, else npm start), else main, else server.js.",
	"pyproject.toml or requirements.txt: FastAPI → uvicorn module:app; Flask with gunicorn → gunicorn module:app; Flask → flask run.",
	"go.mod: the binary that go build makes of the main package (at the root, else under cmd/).",
	"Gemfile naming rails or puma: bundle exec puma.",
}

// Name is how the plan's app is called in messages: "a Node.js app
// (Express)", "an app".
func (p Plan) Name() string {
	name := map[Runtime]string{Procfile: "a Procfile app", Node: "a Node.js app", Python: "a Python app",
		Go: "a Go app", Ruby: "a Ruby app", Unknown: "an app"}[p.Runtime]
	if p.Framework != "" {
		name += " (" + p.Framework + ")"
	}
	return name
}

// Next is what to run after init, in order: the Before steps, then
// gatehouse validate and run; config is how those name the file ("" for
// ./gatehouse.yaml).
func (p Plan) Next(config string) []string {
	c, file := "", ConfigFile
	if config != "" {
		c, file = " -c "+shellQuote(config), config
	}
	if p.Runtime == Unknown {
		return []string{"edit " + file + ": apps.web.command", "gatehouse validate" + c, "gatehouse run" + c}
	}
	return append(append([]string(nil), p.Before...), "gatehouse validate"+c, "gatehouse run"+c)
}

// Render writes p as a gatehouse.yaml: one app, web, that runs the
// plan's command, with a comment at the top that says what was detected
// and why, and comments on each key. An Unknown plan gives a template
// whose command is empty, which validate refuses until it is filled in.
func Render(p Plan) []byte {
	var b bytes.Buffer
	if p.Runtime == Unknown {
		fmt.Fprintf(&b, "# gatehouse.yaml, written by gatehouse init, which could not tell how to\n# start the app in this directory.\n")
	} else {
		fmt.Fprintf(&b, "# gatehouse.yaml for %s, written by gatehouse init from\n# %s.\n", p.Name(), p.Source)
	}
	section(&b, "", p.Why)
	section(&b, "Check:", p.Warnings)
	b.WriteString("#\n# How gatehouse init decides, the first match winning:\n")
	for i, rule := range Order {
		wrap(&b, fmt.Sprintf("#   %d. ", i+1), "#      ", rule)
	}
	b.WriteString("#\n# Next:\n")
	for _, step := range p.Next("") {
		fmt.Fprintf(&b, "#   %s\n", step)
	}
	fmt.Fprintf(&b, "# and open http://localhost%s/ (the listen address below).\n\n", Listen)

	fmt.Fprintf(&b, "listen: %-20s # clients connect here; gatehouse forwards to the app\n", strconv.Quote(Listen))
	fmt.Fprintf(&b, "admin: %-21s # admin API, dashboard and /metrics: keep it on loopback\n", strconv.Quote(Admin))
	b.WriteString("\napps:\n  web:\n")
	if p.Runtime == Unknown {
		b.WriteString("    # TODO: the command that starts your app, listening on $PORT, which\n" +
			"    # gatehouse sets for each instance: \"./server --port $PORT\", say.\n" +
			"    # gatehouse validate refuses this file until it is filled in.\n")
	} else {
		b.WriteString("    # Each instance has a PORT of its own in its environment; sh expands\n" +
			"    # $PORT here. A line with no shell syntax is started with no shell,\n" +
			"    # one with $PORT as sh -c \"exec ...\": either way signals reach the app.\n")
	}
	fmt.Fprintf(&b, "    command: %s\n", strconv.Quote(p.Command))
	if len(p.Env) > 0 {
		b.WriteString("    env:                     # added to gatehouse's own environment\n")
		keys := make([]string, 0, len(p.Env))
		for k := range p.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %s\n", k, strconv.Quote(p.Env[k]))
		}
	}
	b.WriteString("    instances: 1             # more: each has its own PORT, and a crash or a reload loses no request\n")
	b.WriteString("    # No health path: gatehouse's probe connects to each instance's PORT,\n" +
		"    # and an instance is ready once it accepts connections. When the app\n" +
		"    # has a page that answers 200-399 without a login, such as /healthz,\n" +
		"    # name it, so that an app that hangs is taken out of rotation too:\n" +
		"    # health:\n" +
		"    #   path: /healthz\n")
	b.WriteString("    # What nginx in front would do, gatehouse does on its routes\n" +
		"    # (docs/routes.md): compressed answers, security headers, static\n" +
		"    # files, a prefix the app does not know of, rate limits, a password:\n" +
		"    # compress: true\n" +
		"    # security_headers: true\n" +
		"    # routes:\n" +
		"    #   - match: /static/\n" +
		"    #     strip_prefix: true\n" +
		"    #     static: {root: ./public}\n" +
		"    #   - match: /api/\n" +
		"    #     strip_prefix: true          # /api/items reaches the app as /items\n" +
		"    #     rate_limit: {rate: 20/s, burst: 40}\n" +
		"    #   - match: /\n" +
		"    # basic_auth: {users: {admin: HASH}}   # HASH from: gatehouse hash-password\n")
	return b.Bytes()
}

// section writes lines as comment paragraphs after a blank comment line,
// under title when there is one.
func section(b *bytes.Buffer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("#\n")
	if title != "" {
		b.WriteString("# " + title + "\n")
	}
	for _, l := range lines {
		if title != "" {
			wrap(b, "#   - ", "#     ", l)
		} else {
			wrap(b, "# ", "# ", l)
		}
	}
}

// wrap writes text in lines of at most 76 columns (a word longer than
// that goes on a line of its own), the first after first, the rest
// after rest.
func wrap(b *bytes.Buffer, first, rest, text string) {
	const width = 76
	line := first
	empty := true
	for _, w := range strings.Fields(text) {
		if !empty && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	b.WriteString(line + "\n")
}
