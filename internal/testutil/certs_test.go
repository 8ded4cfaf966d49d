package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"
)

// The test CA's leafs verify as their options say, and the files written
// for them load back as the same pair.
func TestCAIssues(t *testing.T) {
	ca := NewCA(t, "Test CA")
	verify := func(c tls.Certificate, name string, usage x509.ExtKeyUsage) error {
		_, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	server := ca.Issue(t, Leaf{Names: []string{"api.internal", "127.0.0.1"}})
	for _, name := range []string{"api.internal", "127.0.0.1"} {
		if err := verify(server, name, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("server leaf for %s: %v", name, err)
		}
	}
	var hostErr x509.HostnameError
	if err := verify(server, "other.example", x509.ExtKeyUsageServerAuth); !errors.As(err, &hostErr) {
		t.Errorf("server leaf for another name: %v, want a HostnameError", err)
	}
	var invalid x509.CertificateInvalidError
	expired := ca.Issue(t, Leaf{Names: []string{"api.internal"}, NotAfter: time.Now().Add(-time.Hour)})
	if err := verify(expired, "api.internal", x509.ExtKeyUsageServerAuth); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("expired leaf: %v, want CertificateInvalidError Expired", err)
	}
	client := ca.Issue(t, Leaf{Names: []string{"gatehouse"}, Client: true})
	if err := verify(client, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client leaf: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := client.Leaf.Verify(x509.VerifyOptions{Roots: NewCA(t, "Other CA").Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); !errors.As(err, &unknown) {
		t.Errorf("leaf against another CA: %v, want UnknownAuthorityError", err)
	}
	certFile, keyFile := KeyPairFiles(t, client)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !pair.Leaf.Equal(client.Leaf) {
		t.Errorf("KeyPairFiles load back: %v", err)
	}
	pem, err := os.ReadFile(ca.File(t))
	if p := x509.NewCertPool(); err != nil || !p.AppendCertsFromPEM(pem) || !p.Equal(ca.Pool()) {
		t.Errorf("CA file: %v", err)
	}
}

// ServeHTTPS serves with the config it is given: its certificate, not one
// of httptest's.
func TestServeHTTPS(t *testing.T) {
	ca := NewCA(t, "Test CA")
	addr := ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, Leaf{Names: []string{"127.0.0.1"}})}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Test CA" {
		t.Errorf("GET = %d from a certificate of %s", resp.StatusCode, resp.TLS.PeerCertificates[0].Issuer)
	}
}
