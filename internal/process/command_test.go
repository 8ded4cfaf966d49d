package process

import (
	"slices"
	"testing"
)

func TestCommandArgv(t *testing.T) {
	sh := func(s string) []string { return []string{"sh", "-c", s} }
	for _, tc := range []struct {
		in, want []string
	}{
		// No shell syntax: the app is started directly.
		{sh("node server.js --port 3000"), []string{"node", "server.js", "--port", "3000"}},
		{sh("  ./bin/app\t-v  "), []string{"./bin/app", "-v"}},
		{sh("exec node server.js"), []string{"node", "server.js"}},
		// One simple command with expansions, quotes or redirections: sh
		// expands it and execs the app.
		{sh("node server.js --port $PORT"), sh("exec node server.js --port $PORT")},
		{sh("gunicorn -b 127.0.0.1:${PORT} app:app"), sh("exec gunicorn -b 127.0.0.1:${PORT} app:app")},
		{sh(`node -e "require('./a'); go()"`), sh(`exec node -e "require('./a'); go()"`)},
		{sh("./app > out.log 2>&1"), sh("./app > out.log 2>&1")}, // & is a list operator to this check: left alone
		{sh("./app >out.log"), sh("exec ./app >out.log")},
		{sh("~/bin/app --x"), sh("~/bin/app --x")}, // syntax in the program word: left alone
		// Anything else stays as it is.
		{sh("exec node $APP"), sh("exec node $APP")},
		{sh("trap '' TERM; ./app"), sh("trap '' TERM; ./app")},
		{sh("cd web && npm start"), sh("cd web && npm start")},
		{sh("./app | tee log"), sh("./app | tee log")},
		{sh("PORT=1 ./app"), sh("PORT=1 ./app")},
		{sh("export X=1"), sh("export X=1")},
		{sh("(./app)"), sh("(./app)")},
		{sh("./app $(cat args)"), sh("./app $(cat args)")},
		{sh("./app `cat args`"), sh("./app `cat args`")},
		{sh("./app\n./other"), sh("./app\n./other")},
		{sh("if true; then ./app; fi"), sh("if true; then ./app; fi")},
		{sh("./app # comment"), sh("./app # comment")},
		{sh(""), sh("")},
		{[]string{"node", "server.js"}, []string{"node", "server.js"}},
		{[]string{"bash", "-c", "node x"}, []string{"bash", "-c", "node x"}},
	} {
		if got := CommandArgv(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("CommandArgv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
