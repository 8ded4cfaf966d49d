package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// gatehouse status lists the HTTPS listener's certificates after the
// instances: where each comes from, when it ends, and its last failure.
func TestStatusPrintsCertificates(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := &admin.StatusResponse{Certificates: []certs.Status{
		{Names: []string{"app.example.com"}, Managed: true, Issuer: "Pebble Intermediate CA", NotAfter: now.Add(60*24*time.Hour + time.Hour)},
		{Names: []string{"api.example.com"}, Managed: true, LastError: "obtaining: dial tcp: connection refused"},
		{Names: []string{"old.example.com"}, CertFile: "/etc/old.pem", Issuer: "Old CA", NotAfter: now.Add(-time.Hour)},
		{Names: []string{"soon.example.com"}, CertFile: "/etc/soon.pem", Issuer: "Old CA", NotAfter: now.Add(5 * time.Hour)},
	}}
	var b strings.Builder
	printStatus(&b, st, now)
	testutil.Golden(t, "testdata/status_certificates.golden", b.String())
}
