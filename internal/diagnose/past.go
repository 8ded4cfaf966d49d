package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// MarkPast marks past the findings about what s no longer runs: an app
// no longer configured (renamed or removed), or instances that are all
// gone (replaced by a reload, scaled down, recycled). The logs diagnose
// reads go back an hour, further than the config they were written
// under. A group some of whose instances are gone stays current and says
// which. The findings are then ranked again, current first.
//
// A snapshot never taken (At zero: a data dir without state.json) tells
// nothing of what runs, and marks nothing. A finding already past stays
// so; a finding without an app (a certificate's) is never past.
func (r *Report) MarkPast(s Snapshot) {
	if !s.At.IsZero() {
		running := map[string]map[string]bool{}
		for _, a := range s.Apps {
			ids := map[string]bool{}
			for _, in := range a.Instances {
				ids[in.ID] = true
			}
			running[a.Name] = ids
		}
		for i := range r.Findings {
			markPast(&r.Findings[i], running)
		}
	}
	rank(r.Findings)
}

// markPast marks f past when what it names no longer runs, with the
// reason first among its evidence. The evidence is replaced, never
// appended to in place, so that a report another goroutine reads can be
// marked as a copy.
func markPast(f *Finding, running map[string]map[string]bool) {
	if f.Past || f.App == "" {
		return
	}
	ids, ok := running[f.App]
	if !ok {
		f.Past = true
		f.Evidence = prepend(f.Evidence, fmt.Sprintf("past: %s is no longer configured (renamed or removed)", f.App))
		return
	}
	var gone []string
	named := f.named()
	for _, id := range named {
		if !ids[id] {
			gone = append(gone, id)
		}
	}
	switch {
	case len(gone) == 0:
	case len(gone) == len(named):
		f.Past = true
		f.Evidence = prepend(f.Evidence, fmt.Sprintf("past: %s no longer %s (replaced, scaled down or stopped)", list(gone), verb(len(gone), "runs", "run")))
	default:
		note := fmt.Sprintf("of these, %s no longer %s", list(gone), verb(len(gone), "runs", "run"))
		if !slices.Contains(f.Evidence, note) {
			f.Evidence = prepend(f.Evidence, note)
		}
	}
}

// named are the instances f is about: its group's, or its one; none for
// a finding about the whole app.
func (f *Finding) named() []string {
	if f.Instance != "" {
		return []string{f.Instance}
	}
	return f.Instances
}

func prepend(ss []string, s string) []string {
	return append([]string{s}, ss...)
}

// list joins names for a sentence: "web-1", "web-1 and web-2",
// "web-1, web-2 and web-3".
func list(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
