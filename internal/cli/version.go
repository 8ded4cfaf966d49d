package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version, Commit and Date are set by a release build at link time:
//
//	go build -ldflags "-X github.com/gatehouse/gatehouse/internal/cli.Version=v1.2.3
//	  -X github.com/gatehouse/gatehouse/internal/cli.Commit=$(git rev-parse HEAD)
//	  -X github.com/gatehouse/gatehouse/internal/cli.Date=2026-12-03T20:47:50Z" ./cmd/gatehouse
//
// What the link leaves unset comes from the binary's build info (see
// buildVersion).
var (
	Version = "dev"
	Commit  string
	Date    string
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			v := currentVersion()
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			fmt.Fprintln(c.OutOrStdout(), v)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: version, commit, date, modified, go, platform")
	return c
}

// versionInfo is what `gatehouse version` reports. Every field is always
// in its JSON, empty when unknown, so that scripts read one shape.
type versionInfo struct {
	Version string `json:"version"`
	// Commit is the full revision when known.
	Commit string `json:"commit"`
	// Date is the build date a release build sets, else the commit's
	// time from the build info; RFC 3339.
	Date string `json:"date"`
	// Modified: the checkout had uncommitted changes when it was built.
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// String is what `gatehouse version` and `gatehouse --version` print:
// "gatehouse v1.2.3 (0123456789ab, 2026-12-03T20:47:50Z, modified) go1.26 linux/amd64".
// The first two words are "gatehouse VERSION" and the last two the Go
// version and platform, whatever is known in between.
func (v versionInfo) String() string {
	var ids []string
	if v.Commit != "" {
		ids = append(ids, shortCommit(v.Commit))
	}
	if v.Date != "" {
		ids = append(ids, v.Date)
	}
	if v.Modified {
		ids = append(ids, "modified")
	}
	s := "gatehouse " + v.Version
	if len(ids) > 0 {
		s += " (" + strings.Join(ids, ", ") + ")"
	}
	return s + " " + v.Go + " " + v.Platform
}

// shortCommit is the 12 characters of a revision that name it in practice.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func versionText() string { return currentVersion().String() }

func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return buildVersion(linkStamp{version: Version, commit: Commit, date: Date}, bi)
}

// linkStamp is what a release build set with -ldflags -X.
type linkStamp struct{ version, commit, date string }

// buildVersion takes each field from the link stamp when a release build
// set it, else from the build info (nil when the binary has none): the
// main module's version under `go install …@vX`, the vcs.* settings when
// built from a checkout with -buildvcs; else the version is "dev". The
// vcs.* settings describe one revision, so they are taken together or not
// at all: not when the link stamped a commit.
func buildVersion(ld linkStamp, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{
		Version:  ld.version,
		Commit:   ld.commit,
		Date:     ld.date,
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if v.Version == "dev" {
		v.Version = ""
	}
	if bi != nil {
		// "(devel)" is what the go command records when it knows no version.
		if v.Version == "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if ld.commit == "" {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					v.Commit = s.Value
				case "vcs.time":
					if v.Date == "" {
						v.Date = s.Value
					}
				case "vcs.modified":
					v.Modified = s.Value == "true"
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}
