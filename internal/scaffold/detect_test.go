package scaffold_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/scaffold"
)

// got is the part of a Plan the table checks: the decision, and whether
// it warned (the wording is the golden test's).
type got struct {
	Runtime   scaffold.Runtime
	Framework string
	Command   string
	Env       map[string]string
	Before    []string
	Warned    bool
}

func summary(p scaffold.Plan) got {
	return got{Runtime: p.Runtime, Framework: p.Framework, Command: p.Command, Env: p.Env, Before: p.Before,
		Warned: len(p.Warnings) > 0}
}

// detectCases are small app directories, file name to content, and what
// Detect makes of each.
var detectCases = []struct {
	name  string
	files map[string]string
	want  got
}{
	{"empty directory", nil, got{}},
	{"procfile web line", map[string]string{"Procfile": "worker: ./jobs\nweb: ./server --port $PORT\n"},
		got{Runtime: scaffold.Procfile, Command: "./server --port $PORT"}},
	{"procfile wins over package.json", map[string]string{
		"Procfile":     "web: node web.js\n",
		"package.json": `{"scripts": {"start": "node server.js"}}`},
		got{Runtime: scaffold.Procfile, Command: "node web.js"}},
	{"procfile without web line passes to package.json", map[string]string{
		"Procfile":     "# only a worker\nworker: node jobs.js\n",
		"package.json": `{"scripts": {"start": "node server.js"}}`,
		"server.js":    "app.listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Command: "node server.js"}},
	{"express start is node: run node itself", map[string]string{
		"package.json": `{"scripts": {"start": "node server.js"}, "dependencies": {"express": "^4"}}`,
		"server.js":    "app.listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Framework: "Express", Command: "node server.js", Before: []string{"npm install"}}},
	{"node start with flags and $PORT stays node", map[string]string{
		"package.json": `{"scripts": {"start": "node --enable-source-maps dist/index.js --port $PORT"}}`},
		got{Runtime: scaffold.Node, Command: "node --enable-source-maps dist/index.js --port $PORT"}},
	{"start that is not node goes through npm", map[string]string{
		"package.json": `{"scripts": {"start": "next start -p $PORT"}, "dependencies": {"next": "14"}}`},
		got{Runtime: scaffold.Node, Command: "npm start", Before: []string{"npm install"}}},
	{"start with an assignment goes through npm", map[string]string{
		"package.json": `{"scripts": {"start": "NODE_ENV=production node server.js"}}`},
		got{Runtime: scaffold.Node, Command: "npm start"}},
	{"no start: main", map[string]string{
		"package.json": `{"main": "lib/app.js"}`,
		"lib/app.js":   "server.listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Command: "node lib/app.js"}},
	{"no start nor main: server.js as npm start", map[string]string{
		"package.json": `{"name": "x"}`,
		"server.js":    "http.createServer(h).listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Command: "node server.js"}},
	{"node entry that ignores PORT warns", map[string]string{
		"package.json": `{"scripts": {"start": "node server.js"}}`,
		"server.js":    "app.listen(3000)"},
		got{Runtime: scaffold.Node, Command: "node server.js", Warned: true}},
	{"package.json with nothing to run", map[string]string{"package.json": `{"name": "lib"}`}, got{}},
	{"package.json saved with a byte order mark", map[string]string{
		"package.json": "\ufeff{\"scripts\": {\"start\": \"node server.js\"}}",
		"server.js":    "app.listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Command: "node server.js"}},
	{"procfile saved on windows", map[string]string{"Procfile": "\ufeffweb: ./server --port $PORT\r\nrelease: ./migrate\r\n"},
		got{Runtime: scaffold.Procfile, Command: "./server --port $PORT"}},
	{"node app built before it starts", map[string]string{
		"package.json": `{"type": "module", "scripts": {"build": "tsc", "start": "node ./dist/server.js --port $PORT"},
			"devDependencies": {"typescript": "^5"}}`},
		got{Runtime: scaffold.Node, Command: "node ./dist/server.js --port $PORT", Before: []string{"npm install", "npm run build"}}},
	{"prestart runs only through npm start", map[string]string{
		"package.json": `{"scripts": {"prestart": "node migrate.js", "start": "node server.js"}}`,
		"server.js":    "app.listen(process.env.PORT)"},
		got{Runtime: scaffold.Node, Command: "npm start"}},
	{"fastapi and uvicorn in requirements.txt", map[string]string{
		"requirements.txt": "fastapi==0.110.0\nuvicorn[standard]>=0.29 # the server\n",
		"main.py":          "from fastapi import FastAPI\napp = FastAPI()\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn main:app --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}}},
	{"fastapi app in app/main.py under another name", map[string]string{
		"requirements.txt": "fastapi\nuvicorn\n",
		"app/main.py":      "import fastapi\n\napi: fastapi.FastAPI = fastapi.FastAPI(title='x')\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn app.main:api --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}}},
	{"fastapi module not found warns", map[string]string{
		"requirements.txt": "fastapi\nuvicorn\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn main:app --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}, Warned: true}},
	{"fastapi without uvicorn warns", map[string]string{
		"requirements.txt": "fastapi\n",
		"main.py":          "app = FastAPI()\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn main:app --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}, Warned: true}},
	{"fastapi in pyproject.toml dependencies", map[string]string{
		"pyproject.toml": "[project]\nname = \"flask-named-service\"\ndescription = \"Flask\"\ndependencies = [\n  \"fastapi[standard]>=0.110\",\n  'uvicorn',\n]\n",
		"main.py":        "app = FastAPI()\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn main:app --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install ."}}},
	{"flask and gunicorn in poetry's tables", map[string]string{
		"pyproject.toml": "[tool.poetry]\nname = \"svc\"\n\n[tool.poetry.dependencies]\npython = \"^3.11\"\nFlask = \"^3.0\"\n\n[tool.poetry.group.prod.dependencies]\ngunicorn = {version = \"^22\"}\n",
		"wsgi.py":        "from flask import Flask\napplication = Flask(__name__)\n"},
		got{Runtime: scaffold.Python, Framework: "Flask", Command: "gunicorn -b 127.0.0.1:$PORT wsgi:application",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install ."}}},
	{"flask and gunicorn in requirements.txt", map[string]string{
		"requirements.txt": "-r base.txt\nFlask>=2.2\ngunicorn==22.0.0\n",
		"app.py":           "from flask import Flask\napp = Flask(__name__)\n"},
		got{Runtime: scaffold.Python, Framework: "Flask", Command: "gunicorn -b 127.0.0.1:$PORT app:app",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}}},
	{"flask application factory", map[string]string{
		"requirements.txt": "flask\ngunicorn\n",
		"app/__init__.py":  "from flask import Flask\n\ndef create_app():\n    return Flask(__name__)\n"},
		got{Runtime: scaffold.Python, Framework: "Flask", Command: "gunicorn -b 127.0.0.1:$PORT 'app:create_app()'",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install -r requirements.txt"}}},
	{"flask application factory in a package of its own name", map[string]string{
		"pyproject.toml":     "[project]\nname = \"flaskr\"\ndependencies = [\"flask\", \"gunicorn\"]\n",
		"flaskr/__init__.py": "from flask import Flask\n\ndef create_app(test_config=None):\n    app = Flask(__name__)\n    return app\n",
		"flaskr/db.py":       "import sqlite3\n",
		"tests/__init__.py":  "from flask import Flask\napp = Flask(__name__)\n"},
		got{Runtime: scaffold.Python, Framework: "Flask", Command: "gunicorn -b 127.0.0.1:$PORT 'flaskr:create_app()'",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install ."}}},
	{"fastapi app in a package under src", map[string]string{
		"pyproject.toml":      "[project]\nname = \"svc\"\ndependencies = [\"fastapi\", \"uvicorn[standard]\"]\n",
		"src/svc/__init__.py": "",
		"src/svc/main.py":     "from fastapi import FastAPI\napp = FastAPI()\n"},
		got{Runtime: scaffold.Python, Framework: "FastAPI", Command: "uvicorn svc.main:app --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1"}, Before: []string{"pip install ."}}},
	{"plain flask: flask run", map[string]string{
		"requirements.txt": "flask\n",
		"main.py":          "import flask\nserver = flask.Flask(__name__)\n"},
		got{Runtime: scaffold.Python, Framework: "Flask", Command: "flask run --host 127.0.0.1 --port $PORT",
			Env: map[string]string{"PYTHONUNBUFFERED": "1", "FLASK_APP": "main:server"}, Before: []string{"pip install -r requirements.txt"}}},
	{"python without fastapi or flask passes on", map[string]string{"requirements.txt": "django\ngunicorn\n"}, got{}},
	{"python without a web framework passes to go.mod", map[string]string{
		"requirements.txt": "requests\n",
		"go.mod":           "module example.com/tool\n",
		"main.go":          "package main\n\nfunc main() { _ = os.Getenv(\"PORT\") }\n"},
		got{Runtime: scaffold.Go, Command: "./tool", Before: []string{"go build -o tool ."}}},
	{"go main package at the root", map[string]string{
		"go.mod":  "module github.com/acme/shop/v2\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { addr := \":\" + os.Getenv(\"PORT\") }\n"},
		got{Runtime: scaffold.Go, Command: "./shop", Before: []string{"go build -o shop ."}}},
	{"go main package under cmd", map[string]string{
		"go.mod":               "module example.com/api\n",
		"api.go":               "package api\n",
		"cmd/migrate/main.go":  "package main\n",
		"cmd/api/main.go":      "package main\n\nvar port = os.Getenv(\"PORT\")\n",
		"cmd/api/main_test.go": "package main\n",
		"api/.keep":            ""}, // go build -o api would write into this directory
		got{Runtime: scaffold.Go, Command: "./bin/api", Before: []string{"go build -o bin/api ./cmd/api"}, Warned: true}},
	{"go library root with a generator, main under cmd", map[string]string{
		"go.mod":            "module example.com/shop\n",
		"shop.go":           "package shop\n",
		"gen.go":            "//go:build ignore\n\npackage main\n\nfunc main() {}\n",
		"cmd/shop/main.go":  "package main\n\nvar port = os.Getenv(\"PORT\")\n",
		"cmd/shop/serve.go": "package main\n"},
		got{Runtime: scaffold.Go, Command: "./shop", Before: []string{"go build -o shop ./cmd/shop"}}},
	{"go main under a cmd directory sh would split", map[string]string{
		"go.mod":                 "module example.com/x\n",
		"cmd/web server/main.go": "package main\n\nvar port = os.Getenv(\"PORT\")\n"},
		got{Runtime: scaffold.Go, Command: "'./web server'", Before: []string{"go build -o 'web server' './cmd/web server'"}}},
	{"go app that ignores PORT warns", map[string]string{
		"go.mod":  "module hello\n",
		"main.go": "package main\n\nfunc main() { http.ListenAndServe(\":8080\", nil) }\n"},
		got{Runtime: scaffold.Go, Command: "./hello", Before: []string{"go build -o hello ."}, Warned: true}},
	{"rails", map[string]string{"Gemfile": "source 'https://rubygems.org'\ngem \"rails\", \"~> 7.1\"\ngem 'pg'\n"},
		got{Runtime: scaffold.Ruby, Framework: "Rails", Command: "bundle exec puma -p $PORT", Before: []string{"bundle install"}}},
	{"puma without rails", map[string]string{"Gemfile": "gem 'sinatra'\ngem 'puma'\n"},
		got{Runtime: scaffold.Ruby, Command: "bundle exec puma -p $PORT", Before: []string{"bundle install"}}},
	{"gemfile without a server", map[string]string{"Gemfile": "gem 'rake'\n"}, got{}},
}

// writeTree writes files (slash-separated names) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Each directory gets the command its runtime is run with, the first
// rule that matches deciding.
func TestDetectChoosesTheCommandForTheApp(t *testing.T) {
	for _, tc := range detectCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := scaffold.Detect(writeTree(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summary(p)); diff != "" {
				t.Errorf("Detect (-want +got):\n%s\nwhy: %q\nwarnings: %q", diff, p.Why, p.Warnings)
			}
			if p.Runtime == scaffold.Unknown && len(p.Why) == 0 {
				t.Errorf("an unknown app's plan says nothing of why")
			}
		})
	}
}

// A file Detect must read and cannot is an error naming it, not an
// unknown app.
func TestDetectReportsFilesItCannotRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"package.json that is not JSON", map[string]string{"package.json": "{"}, "package.json"},
		{"Procfile that is a directory", map[string]string{"Procfile/web": ""}, "Procfile"},
		{"requirements.txt that is a directory", map[string]string{"requirements.txt/x": ""}, "requirements.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := scaffold.Detect(writeTree(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Detect error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
