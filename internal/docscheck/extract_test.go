package docscheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtractFindsRepositoryPaths(t *testing.T) {
	roots := map[string]bool{}
	for _, d := range docRoots {
		roots[d] = true
	}
	tok := func(line int, p string) ref { return ref{Line: line, Path: p} }
	lnk := func(line int, p string) ref { return ref{Line: line, Path: p, Link: true} }

	tests := []struct {
		name string
		md   string
		want []ref
	}{{
		name: "relative links, not URLs or anchors",
		md: "See [operations](docs/operations.md#upgrading) and\n" +
			"[the site](https://example.com/a.md), [above](#layout),\n" +
			"![shot](docs/dashboard.png \"the dashboard\") and [rules](../examples/r.yaml).",
		want: []ref{lnk(1, "docs/operations.md"), lnk(3, "docs/dashboard.png"), lnk(3, "../examples/r.yaml")},
	}, {
		name: "bracketed files of the walk, relative to internal",
		md:   "0. `front.Server.Serve` accepts [front/server.go]\n1. → `get` [cli, server/server.go]",
		want: []ref{tok(1, "front/server.go"), tok(2, "server/server.go")},
	}, {
		name: "paths in code spans, commands among them",
		md: "Run `ROUNDS=3 DURATION=10 bench/proxies.sh` or `go test ./internal/gateway ./internal/...`;\n" +
			"the units are in `dist/systemd/gatehouse.service`, the scripts under `bench/`, see `front/conn.go:42`.",
		want: []ref{
			tok(1, "bench/proxies.sh"), tok(1, "internal/gateway"),
			tok(2, "dist/systemd/gatehouse.service"), tok(2, "bench"), tok(2, "front/conn.go"),
		},
	}, {
		name: "a code span over two lines",
		md:   "as `gatehouse\nstatus` shows, and `kubectl apply -k\ndeploy/kubernetes/edge` does",
		want: []ref{tok(3, "deploy/kubernetes/edge")},
	}, {
		name: "of a kubectl command, only the files it is given",
		md:   "`kubectl exec deploy/gatehouse-demo -- gatehouse drain`, `kubectl apply -f deploy/kubernetes/deployment.yaml`",
		want: []ref{tok(1, "deploy/kubernetes/deployment.yaml")},
	}, {
		name: "not repository paths",
		md: "`/proc/PID/status`, `/etc/gatehouse/gatehouse.yaml`, `$TMPDIR/x.sh`,\n" +
			"`deploy/<app>.yaml`, `docs/*.md`, `x/net/http2`, `HTTP/1.1`, `data_dir/processes.json`,\n" +
			"`https://example.com/docs/a.md`, `go test ./...`, `http://NAME:80/.well-known/acme-challenge/…`,\n" +
			"`BenchmarkProxy/net/http`, `/public/../admin`, [0.26–2.83], [`max_inflight`](#one-request).",
		want: nil,
	}, {
		name: "fenced blocks are left out",
		md:   "```sh\nbench/fenced.sh `bench/fenced.sh`\n```\n~~~\n[internal/x.go]\n~~~\nafter `bench/idle.sh`",
		want: []ref{tok(7, "bench/idle.sh")},
	}, {
		name: "a link inside a code span is not a link",
		md:   "write `[text](docs/none.md)` for a link",
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, extract(tt.md, roots)); diff != "" {
				t.Errorf("extract (-want +got):\n%s", diff)
			}
		})
	}
}

// Paths resolve as the docs mean them, against this repository's tree:
// a link from the file's directory, a path in text from the root or from
// internal/.
func TestMissingResolvesAsTheDocsMean(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		name string
		doc  string
		ref  ref
		want []string
	}{
		{"link from docs/", "docs/metrics.md", ref{Line: 3, Path: "../examples/grafana", Link: true}, nil},
		{"link from docs/ written from the root", "docs/metrics.md", ref{Line: 3, Path: "examples/grafana", Link: true},
			[]string{"docs/metrics.md:3: link to examples/grafana: docs/examples/grafana does not exist"}},
		{"link out of the repository", "README.md", ref{Line: 4, Path: "../go.mod", Link: true},
			[]string{"README.md:4: link to ../go.mod: ../go.mod does not exist"}},
		{"from the root", "docs/metrics.md", ref{Line: 5, Path: "examples/grafana"}, nil},
		{"from internal/", "ARCHITECTURE.md", ref{Line: 6, Path: "front/conn.go"}, nil},
		{"gone", "ARCHITECTURE.md", ref{Line: 7, Path: "front/gone.go"},
			[]string{"ARCHITECTURE.md:7: front/gone.go does not exist, nor internal/front/gone.go"}},
		{"gone from internal/", "docs/performance.md", ref{Line: 8, Path: "internal/gateway/front.go"},
			[]string{"docs/performance.md:8: internal/gateway/front.go does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, missing(root, tt.doc, []ref{tt.ref})); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}
}
