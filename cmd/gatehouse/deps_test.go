package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary links none of the libraries kept for tests or left out on
// purpose: gRPC's (whose initialisation alone mapped 1.6 MiB into every
// gatehouse process; the OTLP exporter speaks gRPC itself), and those
// only tests use.
func TestBinaryLeavesOutTestAndHeavyLibraries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	kept := []string{
		"google.golang.org/grpc",
		"go.opentelemetry.io/proto/otlp",
		"go.opentelemetry.io/otel/exporters/",
		"k8s.io/",
		"github.com/chromedp/",
		"github.com/letsencrypt/pebble",
	}
	for pkg := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		for _, k := range kept {
			if strings.HasPrefix(pkg, k) {
				t.Errorf("the binary links %s", pkg)
			}
		}
	}
}
