package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// goreleaserImage is what .goreleaser.yaml says of the container image:
// the binaries its build context holds and the files it adds.
type goreleaserImage struct {
	binaries   []string // under $TARGETPLATFORM/
	extraFiles []string // at their paths in the repository
	dockerfile string
}

func loadGoreleaserImage(data []byte) (goreleaserImage, error) {
	var doc struct {
		Builds []struct {
			ID     string `yaml:"id"`
			Binary string `yaml:"binary"`
		} `yaml:"builds"`
		Dockers []struct {
			IDs        []string `yaml:"ids"`
			Dockerfile string   `yaml:"dockerfile"`
			ExtraFiles []string `yaml:"extra_files"`
		} `yaml:"dockers_v2"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return goreleaserImage{}, err
	}
	if len(doc.Dockers) != 1 {
		return goreleaserImage{}, fmt.Errorf("%d dockers_v2 entries, want 1", len(doc.Dockers))
	}
	d := doc.Dockers[0]
	img := goreleaserImage{extraFiles: d.ExtraFiles, dockerfile: d.Dockerfile}
	for _, b := range doc.Builds {
		if slices.Contains(d.IDs, b.ID) {
			img.binaries = append(img.binaries, b.Binary)
		}
	}
	return img, nil
}

// checkReleaseDockerfile checks the release Dockerfile against what
// GoReleaser puts in its build context, which holds only the binaries
// of the image's builds and its extra_files: a COPY of anything else
// fails the image's build, and only at release time, since the trial
// release (.ci/release-check) skips docker.
func checkReleaseDockerfile(data string, rel goreleaserImage) []error {
	var errs []error
	_, all := parseDockerfile(data)
	for _, in := range all {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		flags, srcs, _ := copyArgs(in.args)
		if flags["from"] != "" {
			continue
		}
		for _, src := range srcs {
			if bin, ok := strings.CutPrefix(src, "$TARGETPLATFORM/"); ok {
				if !slices.Contains(rel.binaries, bin) {
					errs = append(errs, fmt.Errorf("line %d: copies %s, not a binary of the image's builds %q", in.line, src, rel.binaries))
				}
				continue
			}
			if !slices.Contains(rel.extraFiles, path.Clean(src)) {
				errs = append(errs, fmt.Errorf("line %d: copies %s, which is not in dockers_v2's extra_files %q", in.line, src, rel.extraFiles))
			}
		}
	}
	return errs
}

// runtimeOf is the final stage's instructions that decide how the image
// runs, and where each COPY lands, to compare two images.
func runtimeOf(data string) []string {
	final, _ := parseDockerfile(data)
	var out []string
	for _, in := range final {
		switch in.cmd {
		case "USER", "WORKDIR", "EXPOSE", "STOPSIGNAL", "ENTRYPOINT", "CMD", "HEALTHCHECK", "ENV", "VOLUME":
			out = append(out, in.cmd+" "+in.args)
		case "COPY":
			flags, _, dst := copyArgs(in.args)
			out = append(out, "COPY to "+dst+" chown="+flags["chown"])
		}
	}
	return out
}

// The released image is the root Dockerfile's, built from GoReleaser's
// binaries: the same user, entrypoint, stop signal, ports and files,
// and every file it copies is in GoReleaser's build context.
func TestReleaseImage(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(repoRoot, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := loadGoreleaserImage(conf)
	if err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, rel.dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := checkDockerfile(string(data)); len(errs) > 0 {
		t.Errorf("%s: %v", rel.dockerfile, errors.Join(errs...))
	}
	if errs := checkReleaseDockerfile(string(data), rel); len(errs) > 0 {
		t.Errorf("%s: %v", rel.dockerfile, errors.Join(errs...))
	}
	for _, f := range rel.extraFiles {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Errorf(".goreleaser.yaml: extra file: %v", err)
		}
	}
	if d := cmp.Diff(runtimeOf(string(source)), runtimeOf(string(data))); d != "" {
		t.Errorf("%s's final stage differs from Dockerfile's (-Dockerfile +%s):\n%s", rel.dockerfile, rel.dockerfile, d)
	}
}

// The checks bite: a release Dockerfile that copies what GoReleaser's
// context lacks, or runs unlike the root Dockerfile's image, fails.
func TestReleaseImageCheckRejects(t *testing.T) {
	rel := goreleaserImage{binaries: []string{"gatehouse", "demo"}, extraFiles: []string{"deploy/docker/gatehouse.yaml"}}
	good := "FROM x\nCOPY $TARGETPLATFORM/gatehouse /usr/local/bin/gatehouse\nCOPY deploy/docker/gatehouse.yaml /etc/gatehouse/gatehouse.yaml\nUSER 65532:65532\n"
	if errs := checkReleaseDockerfile(good, rel); len(errs) > 0 {
		t.Fatalf("good Dockerfile: %v", errs)
	}
	tests := []struct{ name, old, new, want string }{
		{"unknown binary", "$TARGETPLATFORM/gatehouse", "$TARGETPLATFORM/gatehoused", "not a binary"},
		{"file outside the context", "deploy/docker/gatehouse.yaml", "dist/packaging/gatehouse.yaml", "extra_files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkReleaseDockerfile(strings.Replace(good, tt.old, tt.new, 1), rel)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tt.want) }) {
				t.Errorf("errors %v, want one containing %q", errs, tt.want)
			}
		})
	}
	if d := cmp.Diff(runtimeOf(good), runtimeOf(strings.Replace(good, "USER 65532:65532", "USER 0", 1))); d == "" {
		t.Error("runtimeOf does not tell USER 0 from USER 65532:65532")
	}
}
