package configref_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/gatehouse/gatehouse/internal/configref"
)

// githubSlug is the id GitHub gives a heading: its text lower-cased,
// punctuation dropped (letters, digits, '-', '_' and spaces kept),
// spaces to hyphens.
func githubSlug(text string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(c), unicode.IsDigit(c), c == '-', c == '_':
			b.WriteRune(c)
		case c == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// Every link within docs/config.md lands on the section it names, as
// GitHub numbers the ids of headings that read alike ("limits",
// "limits-1"): a block key's own heading comes before its section's and
// must not take the link.
func TestDocsLinksLandOnTheirSections(t *testing.T) {
	files, err := configref.Generate(os.DirFS(repoRoot))
	if err != nil {
		t.Fatal(err)
	}
	md := string(files[configref.DocsFile])
	heading := regexp.MustCompile(`^(#+) (.*)$`)
	ids := map[string]string{} // id to the heading's text
	seen := map[string]int{}
	fence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		m := heading.FindStringSubmatch(line)
		if fence || m == nil {
			continue
		}
		id := githubSlug(m[2])
		if n, dup := seen[id]; dup {
			seen[id] = n + 1
			id = fmt.Sprintf("%s-%d", id, n+1)
		} else {
			seen[id] = 0
		}
		ids[id] = m[1] + " " + m[2]
	}
	link := regexp.MustCompile(`\[([^\]]+)\]\(#([^)]+)\)`)
	links := link.FindAllStringSubmatch(md, -1)
	if len(links) < 20 {
		t.Fatalf("found %d links within the page, want the 20 or more it has", len(links))
	}
	for _, m := range links {
		if got, want := ids[m[2]], "## "+m[1]; got != want {
			t.Errorf("[%s](#%s) lands on %q, want the section %q", m[1], m[2], got, want)
		}
	}
	// The guides link into the reference by these ids too.
	guide, err := os.ReadFile(filepath.Join(repoRoot, "docs/configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	into := regexp.MustCompile(`\]\(config\.md#([^)]+)\)`)
	for _, m := range into.FindAllStringSubmatch(string(guide), -1) {
		if _, ok := ids[m[1]]; !ok {
			t.Errorf("docs/configuration.md links to config.md#%s, which is no heading of it", m[1])
		}
	}
}
