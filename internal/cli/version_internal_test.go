package cli

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The version names what a release build stamped, else what the go
// command recorded in the binary, else "dev"; the line keeps
// "gatehouse VERSION" first and the Go version and platform last.
func TestVersionFromLinkStampAndBuildInfo(t *testing.T) {
	t.Parallel()
	const (
		rev     = "0123456789abcdef0123456789abcdef01234567"
		revTime = "2026-11-30T09:15:00Z"
	)
	checkout := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{
			Main: debug.Module{Path: "github.com/gatehouse/gatehouse", Version: "(devel)"},
			Settings: []debug.BuildSetting{
				{Key: "-buildmode", Value: "exe"},
				{Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.time", Value: revTime},
				{Key: "vcs.modified", Value: modified},
			},
		}
	}
	goVer, platform := runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
	tail := " " + goVer + " " + platform
	for _, tc := range []struct {
		name     string
		ld       linkStamp
		bi       *debug.BuildInfo
		want     versionInfo
		wantText string
	}{{
		name:     "no build info, nothing stamped",
		ld:       linkStamp{version: "dev"},
		want:     versionInfo{Version: "dev"},
		wantText: "gatehouse dev" + tail,
	}, {
		name:     "built without -buildvcs",
		ld:       linkStamp{version: "dev"},
		bi:       &debug.BuildInfo{Main: debug.Module{Path: "github.com/gatehouse/gatehouse", Version: "(devel)"}},
		want:     versionInfo{Version: "dev"},
		wantText: "gatehouse dev" + tail,
	}, {
		name:     "go install at a tag",
		ld:       linkStamp{version: "dev"},
		bi:       &debug.BuildInfo{Main: debug.Module{Path: "github.com/gatehouse/gatehouse", Version: "v1.4.0"}},
		want:     versionInfo{Version: "v1.4.0"},
		wantText: "gatehouse v1.4.0" + tail,
	}, {
		name:     "clean checkout",
		ld:       linkStamp{version: "dev"},
		bi:       checkout("false"),
		want:     versionInfo{Version: "dev", Commit: rev, Date: revTime},
		wantText: "gatehouse dev (0123456789ab, " + revTime + ")" + tail,
	}, {
		name:     "checkout with uncommitted changes",
		ld:       linkStamp{version: "dev"},
		bi:       checkout("true"),
		want:     versionInfo{Version: "dev", Commit: rev, Date: revTime, Modified: true},
		wantText: "gatehouse dev (0123456789ab, " + revTime + ", modified)" + tail,
	}, {
		name:     "release build stamps everything",
		ld:       linkStamp{version: "v1.5.0", commit: "fedcba9876543210", date: "2026-12-01T00:00:00Z"},
		bi:       checkout("true"),
		want:     versionInfo{Version: "v1.5.0", Commit: "fedcba9876543210", Date: "2026-12-01T00:00:00Z"},
		wantText: "gatehouse v1.5.0 (fedcba987654, 2026-12-01T00:00:00Z)" + tail,
	}, {
		name:     "only the version stamped",
		ld:       linkStamp{version: "v1.5.0"},
		bi:       checkout("false"),
		want:     versionInfo{Version: "v1.5.0", Commit: rev, Date: revTime},
		wantText: "gatehouse v1.5.0 (0123456789ab, " + revTime + ")" + tail,
	}, {
		name:     "version and build date stamped",
		ld:       linkStamp{version: "v1.5.0", date: "2026-12-01T00:00:00Z"},
		bi:       checkout("false"),
		want:     versionInfo{Version: "v1.5.0", Commit: rev, Date: "2026-12-01T00:00:00Z"},
		wantText: "gatehouse v1.5.0 (0123456789ab, 2026-12-01T00:00:00Z)" + tail,
	}, {
		name:     "short commit stamped",
		ld:       linkStamp{version: "v1.5.0", commit: "fedcba9"},
		want:     versionInfo{Version: "v1.5.0", Commit: "fedcba9"},
		wantText: "gatehouse v1.5.0 (fedcba9)" + tail,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.want.Go, tc.want.Platform = goVer, platform
			got := buildVersion(tc.ld, tc.bi)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("buildVersion (-want +got):\n%s", diff)
			}
			if text := got.String(); text != tc.wantText {
				t.Errorf("text = %q, want %q", text, tc.wantText)
			}
		})
	}
}
