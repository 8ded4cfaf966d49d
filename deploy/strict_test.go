package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manifest is decoded as strictly as the API server's strict field
// validation (kubectl apply --validate=strict): a misspelt, wrongly cased,
// duplicate or unknown field fails, where a lenient decode would drop it
// and the cluster would run without it. The real manifests, each with one
// field misspelt, fail too.
func TestDecodeIsStrict(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	deployment, monitor := read("deployment.yaml"), read(filepath.Join("autoscaling", "servicemonitor.yaml"))
	misspell := func(doc, field, typo string) string {
		if !strings.Contains(doc, field) {
			t.Fatalf("no %q to misspell", field)
		}
		return strings.Replace(doc, field, typo, 1)
	}
	const svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: 80\n"
	const sm = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec:\n  endpoints:\n    - port: admin\n"
	tests := []struct {
		name    string
		doc     string
		wantErr bool
	}{
		{"the real Deployment", deployment, false},
		{"a small Service", svc, false},
		{"Deployment: terminationGracePeriodSeconds misspelt", misspell(deployment, "terminationGracePeriodSeconds:", "terminationGracePeriodSecond:"), true},
		{"Deployment: readOnlyRootFilesystem misspelt", misspell(deployment, "readOnlyRootFilesystem:", "readOnlyRootFileSystem:"), true},
		{"Deployment: probe field in the wrong place", misspell(deployment, "          livenessProbe:\n", "          livenessProbe:\n            path: /livez\n"), true},
		{"Service: field in the wrong case", strings.Replace(svc, "- port:", "- Port:", 1), true},
		{"Service: duplicate field", svc + "  type: ClusterIP\n  type: NodePort\n", true},
		{"a kind this test does not know", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\n", true},
		{"the real ServiceMonitor", monitor, false},
		{"ServiceMonitor: endpoints misspelt", misspell(monitor, "endpoints:", "endpoint:"), true},
		{"ServiceMonitor: bearerTokenSecret (not the authorization this test checks)", sm + "      bearerTokenSecret:\n        name: s\n        key: k\n", true},
		{"ServiceMonitor: duplicate field", sm + "      path: /metrics\n      path: /other\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := splitYAML([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			for _, d := range docs {
				if _, err := decodeObject(d); err != nil {
					errs = append(errs, err)
				}
			}
			if got := len(errs) > 0; got != tt.wantErr {
				t.Errorf("errors %v, want an error: %v", errs, tt.wantErr)
			}
			if len(errs) > 0 {
				t.Logf("rejected: %v", errs[0])
			}
		})
	}
}
