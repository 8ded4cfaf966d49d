package docscheck

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// ref is one repository path that a markdown file names.
type ref struct {
	Line int    // 1-based line of the path in the markdown file
	Path string // slash-separated and cleaned
	// Link is set for a link's target, which a renderer reads relative
	// to the markdown file's directory. Any other path is written
	// relative to the repository root or, as in ARCHITECTURE.md's
	// "[front/conn.go]", to internal/.
	Link bool
}

// docRoots are the top-level directories the docs name paths under.
// They are listed, not only read from the tree, so that a path under a
// directory that has gone is still taken for a path, and reported.
var docRoots = []string{"internal", "cmd", "docs", "bench", "deploy", "dist", "examples", ".ci"}

// pathExts make a token with a slash a path even when it does not start
// with a top-level directory (front/conn.go, written relative to
// internal/).
var pathExts = []string{".go", ".md", ".yaml", ".yml", ".sh"}

var (
	fenceRe     = regexp.MustCompile("^[ \t]*(`{3,}|~{3,})")
	linkRe      = regexp.MustCompile(`\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)`)
	linkDefRe   = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:[ \t]*(\S+)`)
	bracketedRe = regexp.MustCompile(`\[([^\[\]]*)\]`)
	schemeRe    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// extract returns the repository paths markdown text md names, in the
// order they appear: the targets of links, and the words of code spans
// and of bracketed text that look like repository paths (see pathToken).
// Fenced code blocks are left out: they hold configs and shell sessions,
// whose paths are often examples or build outputs rather than files of
// the repository.
func extract(md string, roots map[string]bool) []ref {
	text := withoutFences(md)
	lineAt := func(off int) int { return 1 + strings.Count(text[:off], "\n") }

	type found struct {
		off int
		ref ref
	}
	var all []found
	add := func(off int, p string, link bool) {
		all = append(all, found{off, ref{Line: lineAt(off), Path: p, Link: link}})
	}
	words := func(ws []word) {
		for _, w := range ws {
			if p, ok := pathToken(w.s, roots); ok {
				add(w.off, p, false)
			}
		}
	}

	// Code spans first, then blanked, so that brackets and parentheses
	// inside one are not read as links.
	masked := []byte(text)
	for _, sp := range codeSpans(text) {
		words(kubectlPaths(fields(text, sp[0], sp[1])))
		for i := sp[0]; i < sp[1]; i++ {
			if masked[i] != '\n' {
				masked[i] = ' '
			}
		}
	}
	m := string(masked)

	targets := append(linkRe.FindAllStringSubmatchIndex(m, -1), linkDefRe.FindAllStringSubmatchIndex(m, -1)...)
	for _, loc := range targets {
		if p, ok := linkTarget(m[loc[2]:loc[3]]); ok {
			add(loc[2], p, true)
		}
	}
	for _, loc := range bracketedRe.FindAllStringSubmatchIndex(m, -1) {
		if loc[1] < len(m) && (m[loc[1]] == '(' || m[loc[1]] == ':') {
			continue // a link's text; its target is what it names
		}
		words(fields(m, loc[2], loc[3]))
	}

	sort.SliceStable(all, func(i, j int) bool { return all[i].off < all[j].off })
	var refs []ref
	for _, f := range all {
		refs = append(refs, f.ref)
	}
	return refs
}

// word is a whitespace-separated word of a markdown text and its offset.
type word struct {
	off int
	s   string
}

// fields returns the words of text[start:end].
func fields(text string, start, end int) []word {
	var ws []word
	for i := start; i < end; {
		for i < end && isSpace(text[i]) {
			i++
		}
		j := i
		for j < end && !isSpace(text[j]) {
			j++
		}
		if j > i {
			ws = append(ws, word{i, text[i:j]})
		}
		i = j
	}
	return ws
}

// kubectlPaths keeps, of a kubectl command, only the arguments of its
// file flags: its other arguments name cluster objects, and
// deploy/NAME is a Deployment, not a directory of this repository. Any
// other command is returned whole.
func kubectlPaths(ws []word) []word {
	if len(ws) == 0 || ws[0].s != "kubectl" {
		return ws
	}
	var keep []word
	for i, w := range ws {
		switch {
		case i > 0 && (ws[i-1].s == "-f" || ws[i-1].s == "-k" || ws[i-1].s == "--filename" || ws[i-1].s == "--kustomize"):
			keep = append(keep, w)
		case strings.HasPrefix(w.s, "--filename=") || strings.HasPrefix(w.s, "--kustomize="):
			keep = append(keep, w)
		}
	}
	return keep
}

// withoutFences blanks the lines of fenced code blocks, fences included,
// keeping every newline so that offsets still give line numbers.
func withoutFences(md string) string {
	lines := strings.Split(md, "\n")
	open := ""
	for i, l := range lines {
		if f := fenceRe.FindStringSubmatch(l); f != nil {
			switch {
			case open == "":
				open = f[1]
			case f[1][0] == open[0] && len(f[1]) >= len(open):
				open = ""
			}
			lines[i] = ""
			continue
		}
		if open != "" {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// codeSpans returns the [start, end) offsets of the contents of text's
// code spans: a run of backticks up to the next run of the same length,
// within one paragraph.
func codeSpans(text string) [][2]int {
	run := func(i int) int {
		j := i
		for j < len(text) && text[j] == '`' {
			j++
		}
		return j - i
	}
	var spans [][2]int
	for i := 0; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		n := run(i)
		if i > 0 && text[i-1] == '\\' {
			i += n // an escaped backtick is a literal one
			continue
		}
		open := i + n
		closeAt := -1
		for j := open; j < len(text); {
			if text[j] == '`' {
				k := run(j)
				if k == n {
					closeAt = j
					break
				}
				j += k
				continue
			}
			if text[j] == '\n' && blankLineAfter(text, j) {
				break
			}
			j++
		}
		if closeAt < 0 {
			i = open
			continue
		}
		spans = append(spans, [2]int{open, closeAt})
		i = closeAt + n
	}
	return spans
}

// blankLineAfter reports whether the line after the newline at nl is
// blank, which ends a paragraph.
func blankLineAfter(text string, nl int) bool {
	for i := nl + 1; i < len(text); i++ {
		switch text[i] {
		case '\n':
			return true
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// pathToken reports whether word w, from a code span or bracketed text,
// names a repository path, and which. It does when, after surrounding
// punctuation, a KEY= or --flag= prefix, a leading ./ and a :line or
// #anchor suffix are taken off, it holds a slash and starts with one of
// roots or ends in one of pathExts. URLs, absolute paths (/proc, /etc,
// /tmp), $VARS, <placeholders>, globs, package patterns (./...) and
// paths with .. are not the repository's files, or not one of them.
func pathToken(w string, roots map[string]bool) (string, bool) {
	if strings.Contains(w, "..") {
		return "", false // before the trim below takes the dots of ./... off
	}
	w = strings.TrimLeft(w, `"'(`)
	w = strings.TrimRight(w, `"'),.;:`)
	if strings.Contains(w, "://") {
		return "", false
	}
	if i := strings.LastIndexByte(w, '='); i >= 0 {
		w = w[i+1:]
	}
	if w == "" || strings.ContainsAny(w, "$<>*?[]{}%|\\~…") {
		return "", false
	}
	if w[0] == '/' || w[0] == '-' {
		return "", false
	}
	for strings.HasPrefix(w, "./") {
		w = w[2:]
	}
	if i := strings.IndexAny(w, ":#"); i >= 0 {
		w = w[:i]
	}
	slash := strings.IndexByte(w, '/')
	if slash <= 0 {
		return "", false
	}
	if !roots[w[:slash]] && !hasPathExt(w) {
		return "", false
	}
	return path.Clean(w), true
}

func hasPathExt(p string) bool {
	for _, e := range pathExts {
		if strings.HasSuffix(p, e) {
			return true
		}
	}
	return false
}

// linkTarget returns the file a link's target names, if it is a relative
// path rather than a URL, an anchor in the same file or an absolute path.
func linkTarget(t string) (string, bool) {
	t = strings.TrimSuffix(strings.TrimPrefix(t, "<"), ">")
	if schemeRe.MatchString(t) || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "/") {
		return "", false
	}
	if i := strings.IndexAny(t, "#?"); i >= 0 {
		t = t[:i]
	}
	if u, err := url.PathUnescape(t); err == nil {
		t = u
	}
	if t == "" {
		return "", false
	}
	return path.Clean(t), true
}

// repoRoot is the repository's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

// topDirs is docRoots together with the top-level directories the tree
// has now, so that a new one needs no edit here.
func topDirs(t *testing.T, root string) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	for _, d := range docRoots {
		dirs[d] = true
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != ".git" {
			dirs[e.Name()] = true
		}
	}
	return dirs
}

// inRepo reports whether slash path p, relative to root, stays inside
// the repository and exists.
func inRepo(root, p string) bool {
	if p == ".." || strings.HasPrefix(p, "../") {
		return false
	}
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
	return err == nil
}

// missing returns, for each of refs (the paths markdown file doc names,
// doc relative to root) that does not exist, a message naming it by
// doc:line. A link's target is relative to doc's directory; any other
// path to the repository root or to internal/.
func missing(root, doc string, refs []ref) []string {
	var msgs []string
	for _, r := range refs {
		switch {
		case r.Link:
			if p := path.Join(path.Dir(doc), r.Path); !inRepo(root, p) {
				msgs = append(msgs, fmt.Sprintf("%s:%d: link to %s: %s does not exist", doc, r.Line, r.Path, p))
			}
		case inRepo(root, r.Path), inRepo(root, path.Join("internal", r.Path)):
		case strings.HasPrefix(r.Path, "internal/"):
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s does not exist", doc, r.Line, r.Path))
		default:
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s does not exist, nor internal/%s", doc, r.Line, r.Path, r.Path))
		}
	}
	return msgs
}

// Every file or directory README.md, ARCHITECTURE.md and docs/*.md name
// exists.
func TestDocumentedPathsExist(t *testing.T) {
	root := repoRoot(t)
	docs := []string{"README.md", "ARCHITECTURE.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, filepath.ToSlash(rel))
	}
	roots := topDirs(t, root)

	total := 0
	for _, doc := range docs {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(doc)))
			if err != nil {
				t.Fatal(err)
			}
			refs := extract(string(b), roots)
			total += len(refs)
			for _, m := range missing(root, doc, refs) {
				t.Error(m)
			}
		})
	}
	if total == 0 {
		t.Fatal("the docs name no repository path at all: the extractor no longer finds them")
	}
}
