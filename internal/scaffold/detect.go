package scaffold

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/process"
)

// Runtime is what Detect found the app to be.
type Runtime string

// The runtimes Detect knows, in the order it tries them.
const (
	Unknown  Runtime = ""
	Procfile Runtime = "procfile"
	Node     Runtime = "node"
	Python   Runtime = "python"
	Go       Runtime = "go"
	Ruby     Runtime = "ruby"
)

// Plan is how to run the app in a directory, with the reasons for it.
type Plan struct {
	// Runtime is Unknown when no rule matched; Command is then "".
	Runtime Runtime
	// Framework is the web framework named by the app's dependencies
	// ("Express", "FastAPI", "Flask", "Rails"), "" when none is known.
	Framework string
	// Source is the file that decided, and what in it: `package.json
	// scripts.start "node server.js"`.
	Source string
	// Command is the app's command: key, a command line in which sh
	// expands $PORT.
	Command string
	// Env is what the app's env: key adds.
	Env map[string]string
	// Before is what to run once before gatehouse run (install the
	// dependencies, build the binary); gatehouse does neither itself.
	Before []string
	// Why explains the command, a sentence a line, for the config's
	// comment and init's report.
	Why []string
	// Warnings are what the user should check: an app that does not seem
	// to read PORT, a module not found where it was looked for.
	Warnings []string
}

// Detect decides how to run the app in dir. The rules are tried in
// order, the first that matches wins: a Procfile's web: line;
// package.json; Python dependencies (pyproject.toml, requirements.txt)
// naming uvicorn and FastAPI, gunicorn and Flask, or Flask; go.mod; a
// Gemfile with rails or puma. An app none of them places is a Plan of
// runtime Unknown and no error; the error is for a file that cannot be
// read or parsed.
func Detect(dir string) (Plan, error) {
	d := detector{dir: dir}
	for _, rule := range []func() (Plan, bool, error){d.procfile, d.node, d.python, d.golang, d.ruby} {
		p, ok, err := rule()
		if err != nil {
			return Plan{}, err
		}
		if ok {
			return p, nil
		}
	}
	return Plan{Why: append([]string{"Found none of: a Procfile with a web: line, package.json, " +
		"pyproject.toml or requirements.txt naming FastAPI or Flask, go.mod, a Gemfile with rails or puma."},
		d.passed...)}, nil
}

// detector holds what the rules tried so far saw without matching, so
// that an unknown app's template says why each one passed.
type detector struct {
	dir    string
	passed []string
}

// read returns the file name in dir, nil when it does not exist. A
// byte order mark, which editors on Windows may write and npm, pip and
// node all skip, is dropped.
func (d *detector) read(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && b == nil {
		b = []byte{} // there, and empty
	}
	return bytes.TrimPrefix(b, []byte("\ufeff")), err
}

// isDir reports whether name in dir is a directory.
func (d *detector) isDir(name string) bool {
	fi, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(name)))
	return err == nil && fi.IsDir()
}

// procfile is the web: line of a Procfile, as gatehouse run would run it
// without a config.
func (d *detector) procfile() (Plan, bool, error) {
	b, err := d.read("Procfile")
	if b == nil || err != nil {
		return Plan{}, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(text, ":")
		if !ok || strings.TrimSpace(name) != "web" || strings.TrimSpace(cmd) == "" {
			continue
		}
		cmd = strings.TrimSpace(cmd)
		return Plan{Runtime: Procfile, Source: fmt.Sprintf("Procfile web: %q", cmd), Command: cmd,
			Why: []string{
				"The Procfile's web: line is the command, as Procfile runners (Heroku, foreman) run it.",
				"It must listen on $PORT, which gatehouse sets for each instance.",
			}}, true, nil
	}
	if err := sc.Err(); err != nil {
		return Plan{}, false, fmt.Errorf("read Procfile: %w", err)
	}
	d.passed = append(d.passed, "Procfile: it has no web: line.")
	return Plan{}, false, nil
}

// packageJSON is what node reads of package.json.
type packageJSON struct {
	Main            string            `json:"main"`
	Scripts         map[string]string `json:"scripts"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

// node runs scripts.start, else main, else server.js (npm start's own
// default): node itself when the command is node's and no prestart must
// run before it, so that signals reach the app with no npm in between.
func (d *detector) node() (Plan, bool, error) {
	b, err := d.read("package.json")
	if b == nil || err != nil {
		return Plan{}, false, err
	}
	var pkg packageJSON
	if err := json.Unmarshal(b, &pkg); err != nil {
		return Plan{}, false, fmt.Errorf("package.json: %w", err)
	}
	p := Plan{Runtime: Node}
	start := strings.TrimSpace(pkg.Scripts["start"])
	prestart := strings.TrimSpace(pkg.Scripts["prestart"]) != ""
	switch {
	case start != "" && !prestart && process.Program(process.CommandArgv([]string{"sh", "-c", start})) == "node":
		p.Source = fmt.Sprintf("package.json scripts.start %q", start)
		p.Command = start
		p.Why = append(p.Why, "scripts.start runs node: gatehouse runs that command itself rather than npm start, "+
			"so that SIGTERM reaches the app with no npm in between and the app can drain.")
	case start != "":
		p.Source = fmt.Sprintf("package.json scripts.start %q", start)
		p.Command = "npm start"
		if prestart {
			p.Why = append(p.Why, "scripts.prestart runs before scripts.start only under npm start, so npm runs them; "+
				"gatehouse signals npm and the app together, as a process group.")
		} else {
			p.Why = append(p.Why, "scripts.start is not a plain node command, so npm runs it "+
				"(npm puts node_modules/.bin on PATH); gatehouse signals npm and the app together, as a process group.")
		}
	case pkg.Main != "":
		p.Source = fmt.Sprintf("package.json main %q", pkg.Main)
		p.Command = "node " + shellQuote(pkg.Main)
		p.Why = append(p.Why, "package.json has no scripts.start: node runs its main file.")
	default:
		ok, err := d.exists("server.js")
		if err != nil {
			return Plan{}, false, err
		}
		if !ok {
			d.passed = append(d.passed, "package.json: it has no scripts.start, no main, and there is no server.js.")
			return Plan{}, false, nil
		}
		p.Source = "package.json, and server.js"
		p.Command = "node server.js"
		p.Why = append(p.Why, "package.json has no scripts.start nor main: node runs server.js, as npm start would.")
	}
	if _, ok := pkg.Dependencies["express"]; ok {
		p.Framework = "Express"
		p.Why = append(p.Why, "Express: the app must listen on process.env.PORT (app.listen(process.env.PORT)), "+
			"which gatehouse sets for each instance.")
	} else {
		p.Why = append(p.Why, "The app must listen on process.env.PORT, which gatehouse sets for each instance.")
	}
	if len(pkg.Dependencies) > 0 || len(pkg.DevDependencies) > 0 {
		p.Before = append(p.Before, "npm install")
	}
	if strings.TrimSpace(pkg.Scripts["build"]) != "" {
		// What start runs (dist/server.js) is often what build makes.
		p.Before = append(p.Before, "npm run build")
	}
	if entry := nodeEntry(p.Command); entry != "" {
		if w, err := d.mentions(entry, "PORT", "process.env.PORT"); err != nil {
			return Plan{}, false, err
		} else if w != "" {
			p.Warnings = append(p.Warnings, w)
		}
	}
	return p, true, nil
}

// nodeEntry is the script a node command line runs, "" when it cannot
// tell (npm start, flags with values).
func nodeEntry(cmd string) string {
	words := strings.Fields(cmd)
	if len(words) < 2 || words[0] != "node" {
		return ""
	}
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			return strings.Trim(w, `'"`)
		}
	}
	return ""
}

// mentions returns a warning when the source file name (or name.js)
// does not contain word: the app is unlikely to read PORT. A file that
// is not there gives none: it may be built later.
func (d *detector) mentions(name, word, what string) (string, error) {
	for _, n := range []string{name, name + ".js"} {
		ok, err := d.exists(n)
		if err != nil || !ok {
			if err != nil {
				return "", err
			}
			continue
		}
		b, err := d.read(n)
		if err != nil {
			return "", err
		}
		if !bytes.Contains(b, []byte(word)) {
			return fmt.Sprintf("%s does not mention %s: gatehouse waits for each instance to listen on its PORT, "+
				"so an app that listens elsewhere never becomes ready.", n, what), nil
		}
		return "", nil
	}
	return "", nil
}

// exists reports whether name is a file in dir.
func (d *detector) exists(name string) (bool, error) {
	fi, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Mode().IsRegular(), nil
}

// python places an ASGI or WSGI app by the dependencies its
// pyproject.toml and requirements.txt name.
func (d *detector) python() (Plan, bool, error) {
	deps := map[string]bool{}
	var files []string
	for _, f := range []struct {
		name  string
		parse func([]byte, map[string]bool)
	}{{"pyproject.toml", pyprojectDeps}, {"requirements.txt", requirementsDeps}} {
		b, err := d.read(f.name)
		if err != nil {
			return Plan{}, false, err
		}
		if b != nil {
			f.parse(b, deps)
			files = append(files, f.name)
		}
	}
	if len(files) == 0 {
		return Plan{}, false, nil
	}
	from := strings.Join(files, " and ")
	p := Plan{Runtime: Python, Env: map[string]string{"PYTHONUNBUFFERED": "1"}}
	if slices.Contains(files, "requirements.txt") {
		p.Before = append(p.Before, "pip install -r requirements.txt")
	} else {
		p.Before = append(p.Before, "pip install .")
	}
	unbuffered := "PYTHONUNBUFFERED=1: the app's output reaches gatehouse's logs line by line, not in blocks."
	switch {
	case deps["fastapi"]:
		p.Framework = "FastAPI"
		mod, obj, found, err := d.pyApp([]string{"main.py", "app.py", "app/main.py"}, []string{"main.py", "app.py"}, "FastAPI", false)
		if err != nil {
			return Plan{}, false, err
		}
		target := mod + ":" + obj
		p.Source = from + " naming fastapi"
		if deps["uvicorn"] {
			p.Source += " and uvicorn"
		}
		p.Command = "uvicorn " + shellQuote(target) + " --host 127.0.0.1 --port $PORT"
		p.Why = append(p.Why, "FastAPI is served by uvicorn, on the PORT gatehouse sets for each instance "+
			"and on loopback: clients reach it through gatehouse.")
		if found != "" {
			p.Why = append(p.Why, fmt.Sprintf("%s holds the app: FastAPI( is called there, as %s.", found, obj))
		} else {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no FastAPI( found in main.py, app.py, app/main.py nor a package's main.py or app.py: "+
				"check that %s names your app (module:variable).", target))
		}
		if !deps["uvicorn"] {
			p.Warnings = append(p.Warnings, from+" does not name uvicorn, which serves the app: add it (or fastapi[standard]).")
		}
		p.Why = append(p.Why, unbuffered)
		return p, true, nil
	case deps["flask"]:
		p.Framework = "Flask"
		mod, obj, found, err := d.pyApp([]string{"app.py", "wsgi.py", "main.py", "app/__init__.py"},
			[]string{"__init__.py", "app.py", "wsgi.py", "main.py"}, "Flask", true)
		if err != nil {
			return Plan{}, false, err
		}
		target := mod + ":" + obj
		if found == "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no Flask( found in app.py, wsgi.py, main.py, app/__init__.py nor a package's __init__.py, app.py, wsgi.py or main.py: "+
				"check that %s names your app (module:variable).", target))
		}
		if deps["gunicorn"] {
			p.Source = from + " naming flask and gunicorn"
			p.Command = "gunicorn -b 127.0.0.1:$PORT " + shellQuote(target)
			p.Why = append(p.Why, "Flask is served by gunicorn, on the PORT gatehouse sets for each instance "+
				"and on loopback: clients reach it through gatehouse.")
		} else {
			p.Source = from + " naming flask"
			p.Command = "flask run --host 127.0.0.1 --port $PORT"
			p.Env["FLASK_APP"] = target
			p.Why = append(p.Why, "Flask without gunicorn: flask run, Flask's development server, on the PORT "+
				"gatehouse sets for each instance; FLASK_APP names the app. For production add gunicorn to the "+
				"dependencies and run it: gunicorn -b 127.0.0.1:$PORT "+shellQuote(target)+".")
		}
		if found != "" {
			p.Why = append(p.Why, fmt.Sprintf("%s holds the app: Flask( is called there.", found))
		}
		p.Why = append(p.Why, unbuffered)
		return p, true, nil
	}
	d.passed = append(d.passed, from+": it names neither FastAPI nor Flask.")
	return Plan{}, false, nil
}

var (
	// appAssign finds "NAME = FastAPI(" or "NAME = flask.Flask(", with an
	// annotation or not.
	appAssign = regexp.MustCompile(`(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]*)?=\s*(?:[A-Za-z_][A-Za-z0-9_]*\.)?(FastAPI|Flask)\(`)
	// appFactory finds Flask's application factory.
	appFactory = regexp.MustCompile(`(?m)^def (create_app|make_app)\(`)
)

// pyApp finds the module among files, then among inPackage in each of
// the app's packages, that creates the app with constructor (FastAPI,
// Flask), and the variable holding it; with factory, a create_app()
// where no variable is. Not found, it is the first file's module and
// "app", and found is "".
func (d *detector) pyApp(files, inPackage []string, constructor string, factory bool) (mod, obj, found string, err error) {
	module := func(f string) string {
		f = strings.TrimSuffix(strings.TrimSuffix(f, ".py"), "/__init__")
		return strings.ReplaceAll(strings.TrimPrefix(f, "src/"), "/", ".")
	}
	candidates := slices.Clone(files)
	for _, pkg := range d.pyPackages() {
		for _, f := range inPackage {
			if f := pkg + "/" + f; !slices.Contains(candidates, f) {
				candidates = append(candidates, f)
			}
		}
	}
	for _, f := range candidates {
		b, err := d.read(f)
		if err != nil {
			return "", "", "", err
		}
		for _, m := range appAssign.FindAllSubmatch(b, -1) {
			if string(m[2]) == constructor {
				return module(f), string(m[1]), f, nil
			}
		}
		if m := appFactory.FindSubmatch(b); factory && m != nil && bytes.Contains(b, []byte(constructor+"(")) {
			return module(f), string(m[1]) + "()", f, nil
		}
	}
	return module(files[0]), "app", "", nil
}

// pyPackages are the directories at the top and under src/ (the two
// layouts packaging guides give) that hold an __init__.py, but for the
// tests', by name. It is a search, not a file the app needs: a
// directory it cannot read (a database's volume) is passed over.
func (d *detector) pyPackages() []string {
	var pkgs []string
	for _, parent := range []string{".", "src"} {
		ents, _ := os.ReadDir(filepath.Join(d.dir, parent))
		for _, e := range ents {
			name := e.Name()
			if !e.IsDir() || name == "tests" || name == "test" || strings.HasPrefix(name, ".") {
				continue
			}
			if parent != "." {
				name = parent + "/" + name
			}
			if ok, err := d.exists(name + "/__init__.py"); ok && err == nil {
				pkgs = append(pkgs, name)
			}
		}
	}
	return pkgs
}

// requirementName is the distribution name a requirement begins with.
var requirementName = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)

// normalName is a distribution name as pip compares them (PEP 503).
func normalName(s string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(s))
}

// requirementsDeps adds the names a requirements.txt lists.
func requirementsDeps(b []byte, deps map[string]bool) {
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		if strings.HasPrefix(strings.TrimSpace(line), "-") {
			continue // -r other.txt, -e ., --index-url
		}
		if m := requirementName.FindStringSubmatch(line); m != nil {
			deps[normalName(m[1])] = true
		}
	}
}

var (
	// quotedRequirement is a TOML string that is one requirement:
	// "fastapi[standard]>=0.110", "uvicorn", "flask ; python_version>'3'".
	quotedRequirement = regexp.MustCompile(`["']([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]"']*\])?\s*(?:[<>=!~;@][^"']*)?["']`)
	// tomlKey is a key at the start of a line (Poetry's "flask = '^3'").
	tomlKey = regexp.MustCompile(`^\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?\s*=`)
)

// pyprojectDeps adds the names a pyproject.toml depends on: PEP 621
// dependency arrays (every string that reads as one requirement) and the
// keys of Poetry's dependency tables. It reads lines, not TOML: names
// are all it needs.
func pyprojectDeps(b []byte, deps map[string]bool) {
	section := ""
	for line := range strings.Lines(string(b)) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasPrefix(trimmed, "[") && !strings.HasPrefix(trimmed, "[[") && strings.HasSuffix(trimmed, "]") {
			section = strings.Trim(trimmed, "[] ")
			continue
		}
		if strings.HasSuffix(section, "dependencies") {
			if m := tomlKey.FindStringSubmatch(line); m != nil {
				deps[normalName(m[1])] = true
			}
		}
		// Keys' string values ("name = 'flask-app'") are not requirements.
		if m := tomlKey.FindStringIndex(line); m != nil && !strings.HasSuffix(section, "dependencies") &&
			!strings.HasPrefix(strings.TrimSpace(line[m[1]:]), "[") {
			continue
		}
		for _, m := range quotedRequirement.FindAllStringSubmatch(line, -1) {
			deps[normalName(m[1])] = true
		}
	}
}

// golang runs the binary go build makes of the main package, at the root
// or under cmd/.
func (d *detector) golang() (Plan, bool, error) {
	b, err := d.read("go.mod")
	if b == nil || err != nil {
		return Plan{}, false, err
	}
	module := ""
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			module = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	p := Plan{Runtime: Go, Source: "go.mod"}
	if module != "" {
		p.Source = fmt.Sprintf("go.mod module %s", module)
	}
	pkg, name, others, err := d.goMain(module)
	if err != nil {
		return Plan{}, false, err
	}
	if pkg == "" {
		p.Warnings = append(p.Warnings, "no package main at the root or under cmd/: change the build and the command "+
			"to the package that has func main.")
		pkg = "."
	}
	if len(others) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("other main packages (%s) are not run: this config runs %s.",
			strings.Join(others, ", "), pkg))
	}
	out := name
	if d.isDir(out) {
		out = "bin/" + name
	}
	p.Before = []string{fmt.Sprintf("go build -o %s %s", shellQuote(out), shellQuote(pkg))}
	p.Command = shellQuote("./" + out)
	p.Why = append(p.Why,
		fmt.Sprintf("gatehouse runs the binary `%s` makes (build it before gatehouse run, "+
			"and again for each deploy): `go run` would compile at every start and put the go tool between "+
			"gatehouse and the app.", p.Before[0]),
		"The app must listen on the PORT environment variable (os.Getenv(\"PORT\")), which gatehouse sets for each instance.")
	if pkg != "" {
		w, err := d.goMentionsPort(pkg)
		if err != nil {
			return Plan{}, false, err
		}
		if w != "" {
			p.Warnings = append(p.Warnings, w)
		}
	}
	return p, true, nil
}

// goMain finds the main package: the root's, else the one under cmd/
// named after the module, else the first there; others are the rest.
// name is the binary's name.
func (d *detector) goMain(module string) (pkg, name string, others []string, err error) {
	base := goBinaryName(module)
	ok, err := d.goMainIn(".")
	if err != nil || ok {
		return ".", base, nil, err
	}
	ents, err := os.ReadDir(filepath.Join(d.dir, "cmd"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", base, nil, nil
	}
	if err != nil {
		return "", "", nil, err
	}
	var mains []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		ok, err := d.goMainIn("cmd/" + e.Name())
		if err != nil {
			return "", "", nil, err
		}
		if ok {
			mains = append(mains, e.Name())
		}
	}
	if len(mains) == 0 {
		return "", base, nil, nil
	}
	pick := 0
	for i, m := range mains {
		if m == base {
			pick = i
		}
	}
	for i, m := range mains {
		if i != pick {
			others = append(others, "./cmd/"+m)
		}
	}
	return "./cmd/" + mains[pick], mains[pick], others, nil
}

// goPackageMain matches a file's package clause for main.
var goPackageMain = regexp.MustCompile(`(?m)^package main\s*$`)

// goMainIn reports whether dir (relative) holds a non-test Go file of
// package main.
func (d *detector) goMainIn(dir string) (bool, error) {
	files, err := d.goFiles(dir)
	if err != nil {
		return false, err
	}
	for _, b := range files {
		if goPackageMain.Match(b) {
			return true, nil
		}
	}
	return false, nil
}

// goIgnored matches the build constraint of a file go build leaves out
// whatever the platform: a generator's "//go:build ignore" package main
// beside a library's own package.
var goIgnored = regexp.MustCompile(`(?m)^//(go:build|\s*\+build)\s+ignore\s*$`)

// goFiles returns the non-test .go files of dir (relative) that go build
// reads, by name.
func (d *detector) goFiles(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(filepath.Join(d.dir, filepath.FromSlash(dir)))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := d.read(dir + "/" + n)
		if err != nil {
			return nil, err
		}
		if goIgnored.Match(b) {
			continue
		}
		files[n] = b
	}
	return files, nil
}

// goMentionsPort warns when no file of the main package names "PORT".
func (d *detector) goMentionsPort(pkg string) (string, error) {
	files, err := d.goFiles(strings.TrimPrefix(pkg, "./"))
	if err != nil || len(files) == 0 {
		return "", err
	}
	for _, b := range files {
		if bytes.Contains(b, []byte(`"PORT"`)) {
			return "", nil
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprintf("the main package (%s) does not mention \"PORT\": gatehouse waits for each instance to listen "+
		"on its PORT, so an app that listens elsewhere never becomes ready.", strings.Join(names, ", ")), nil
}

var (
	majorVersion    = regexp.MustCompile(`^v[0-9]+$`)
	notFileNameChar = regexp.MustCompile(`[^A-Za-z0-9._-]`)
	// plainShellWord needs no quoting for sh.
	plainShellWord = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)
)

// goBinaryName is the name go build gives the module's root package:
// its path's last element, without a major-version suffix.
func goBinaryName(module string) string {
	parts := strings.Split(module, "/")
	name := parts[len(parts)-1]
	if len(parts) > 1 && majorVersion.MatchString(name) {
		name = parts[len(parts)-2]
	}
	name = notFileNameChar.ReplaceAllString(name, "")
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") {
		name = "app"
	}
	return name
}

// gemfileGem matches a gem line naming rails or puma.
var gemfileGem = regexp.MustCompile(`(?m)^\s*gem\s+["'](rails|puma)["']`)

// ruby runs puma for a Gemfile that names rails or puma.
func (d *detector) ruby() (Plan, bool, error) {
	b, err := d.read("Gemfile")
	if b == nil || err != nil {
		return Plan{}, false, err
	}
	gems := map[string]bool{}
	for _, m := range gemfileGem.FindAllSubmatch(b, -1) {
		gems[string(m[1])] = true
	}
	if len(gems) == 0 {
		d.passed = append(d.passed, "Gemfile: it names neither rails nor puma.")
		return Plan{}, false, nil
	}
	p := Plan{Runtime: Ruby, Command: "bundle exec puma -p $PORT", Before: []string{"bundle install"}}
	if gems["rails"] {
		p.Framework = "Rails"
		p.Source = "Gemfile gem \"rails\""
	} else {
		p.Source = "Gemfile gem \"puma\""
	}
	p.Why = append(p.Why, "puma serves the app (its config/puma.rb too, when there is one) on the PORT gatehouse "+
		"sets for each instance; bundle exec runs it with the Gemfile's gems.")
	return p, true, nil
}

// shellQuote quotes s for sh when it has anything sh would read as
// syntax ("app:create_app()").
func shellQuote(s string) string {
	if plainShellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
