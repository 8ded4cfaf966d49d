package process

import (
	"strings"
)

// CommandArgv is the argv an instance's command is started with. A
// command string (a Procfile line, command: "…") arrives as
// ["sh", "-c", s]; run that way, sh is gatehouse's child and the app its
// grandchild, which a SIGKILL of gatehouse leaves running. So:
//
//   - s with no shell syntax at all ("node server.js --port 3000") is
//     split on blanks and started directly: the app is the child;
//   - s that is one simple command with shell syntax in its words
//     ("node server.js --port $PORT", "./app > out.log") runs as
//     sh -c "exec s": the shell expands it and replaces itself by the app;
//   - anything else (lists, pipes, compound commands, "cd dir && …",
//     assignments before the command, a builtin) is left to sh -c as is.
//
// A single argument holding a whole command line (gatehouse run --
// 'python3 -m uvicorn main:app --port $PORT') is such a string too: no
// program has blanks and $PORT in its path, and exec'ing it as one would
// fail for ever. Any other argv is started as it is, word for word.
func CommandArgv(argv []string) []string {
	if line, ok := commandLine(argv); ok {
		argv = []string{"sh", "-c", line}
	}
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		return argv
	}
	s := strings.TrimSpace(argv[2])
	words := strings.Fields(s)
	if len(words) == 0 {
		return argv
	}
	if words[0] == "exec" {
		// Already replaces the shell; without syntax, exec the rest.
		if len(words) > 1 && !hasShellSyntax(s) && plainCommandWord(words[1]) {
			return words[1:]
		}
		return argv
	}
	if !plainCommandWord(words[0]) {
		return argv
	}
	if !hasShellSyntax(s) {
		return words
	}
	if simpleCommand(s) {
		return []string{"sh", "-c", "exec " + s}
	}
	return argv
}

// commandLine reports whether argv is one argument that is a command
// line rather than a program's path: it has words separated by blanks.
func commandLine(argv []string) (string, bool) {
	if len(argv) != 1 {
		return "", false
	}
	s := strings.TrimSpace(argv[0])
	return s, strings.ContainsAny(s, " \t\n")
}

// Program is the program argv, as CommandArgv returned it, runs: its
// first word, or the word a shell execs (sh -c "exec prog …"); "" when
// only the shell knows (a list, a pipe, a builtin).
func Program(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-c" {
		return argv[0]
	}
	words := strings.Fields(argv[2])
	if len(words) < 2 || words[0] != "exec" || !plainCommandWord(words[1]) || !simpleCommand(argv[2]) {
		return ""
	}
	return words[1]
}

// shellMeta are the characters that make a string more than blank-separated
// words to sh: expansions, quoting, redirections, lists, globs, comments.
const shellMeta = "$`|&;<>()*?[]{}~'\"\\#\n\r"

func hasShellSyntax(s string) bool { return strings.ContainsAny(s, shellMeta) }

// plainCommandWord reports whether w, as a command's first word, names a
// program: not an assignment (FOO=1 cmd), a reserved word or a builtin
// that has no program of its own, and free of syntax.
func plainCommandWord(w string) bool {
	if strings.Contains(w, "=") || strings.ContainsAny(w, shellMeta) || shellWord(w) {
		return false
	}
	return true
}

// shellWord reports whether w is a reserved word or a builtin that only
// the shell understands: a command starting with one must stay a shell
// command.
func shellWord(w string) bool {
	switch w {
	case "!", "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "function", "select", "[[", "]]", "time", "coproc", ".", ":", "source", "eval", "exec", "exit", "export", "readonly", "return", "set", "shift", "times", "trap", "unset", "cd", "alias", "unalias", "ulimit", "umask", "command", "wait", "read", "getopts", "hash", "type", "jobs", "fg", "bg", "local", "declare", "typeset", "let", "builtin":
		return true
	}
	return false
}

// simpleCommand reports whether s is one simple command: words and
// redirections, no list (; & && ||), pipe, subshell, group, command
// substitution or line break outside quotes, so that "exec s" runs the
// same program with the same words.
func simpleCommand(s string) bool {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			if i+1 < len(s) && (s[i+1] == '\n' || s[i+1] == '\r') {
				return false
			}
			i++
		case c == '`':
			return false
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			return false
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			// ${PORT}, ${X:-default}: one expansion, not a group.
			j := strings.IndexByte(s[i:], '}')
			if j < 0 || strings.ContainsAny(s[i:i+j], "`(;&|\n") {
				return false
			}
			i += j
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case strings.IndexByte(";&|(){}\n\r#", c) >= 0:
			return false
		}
	}
	return quote == 0
}
