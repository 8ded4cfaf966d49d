package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// upstreamTLS checks an app's upstream_tls: block and keeps the files it
// names as parsed, for the connections and probes that use them.
func (v *validator) upstreamTLS(a *App, path string) {
	u := a.UpstreamTLS
	if u == nil {
		return
	}
	u.roots, u.cert = nil, nil
	if !a.External() {
		v.errorf(path, "only for an external pool (upstreams:): gatehouse speaks plain HTTP on loopback to the instances it runs")
		return
	}
	if u.ServerName != "" && !validServerName(u.ServerName) {
		v.errorf(path+".server_name", "%q must be a host name (or IP address), without scheme or port", u.ServerName)
	}
	if u.CAFile != "" {
		roots, err := readRoots(v.filePath(u.CAFile))
		if err != nil {
			v.errorf(path+".ca_file", "%v", err)
		}
		u.roots = roots
	}
	switch {
	case u.CertFile != "" && u.KeyFile == "":
		v.errorf(path+".key_file", "required with cert_file: the client certificate's private key")
	case u.CertFile == "" && u.KeyFile != "":
		v.errorf(path+".cert_file", "required with key_file: the client certificate")
	case u.CertFile != "":
		u.cert = v.keyPair(u, path)
	}
}

// upstreamSchemes accepts "https://host[:port]" in upstreams: as short for
// host:port (port 443 by default) with upstream_tls: (its defaults, when
// the app has no such block), and "http://host[:port]" for the plain
// address. TLS is the whole pool's: every entry says https://, or none
// does. The scheme is taken off here, once, so that everything after the
// config sees host:port.
func (v *validator) upstreamSchemes(a *App, path string) {
	var https, plain, looked []int
	for i, u := range a.Upstreams {
		p := indexPath(path, i)
		if IsDNSUpstream(u) {
			looked = append(looked, i) // checked by source, spoken to as upstream_tls: says
			continue
		}
		scheme, rest, ok := strings.Cut(u, "://")
		if ok && IsDNSUpstream(rest) {
			v.errorf(p, "%q: a DNS entry takes no https://: write %q and add an upstream_tls: block, which its members are spoken to with", u, rest)
			v.reported(p)
			continue
		}
		if !ok {
			plain = append(plain, i)
			continue
		}
		addr, err := schemeAddr(u)
		if err != nil {
			v.errorf(p, "%q %v", u, err)
			v.reported(p) // not again as "must be host:port"
			continue
		}
		a.Upstreams[i] = addr
		if strings.EqualFold(scheme, "https") { // schemes are case-insensitive (RFC 3986 §3.1)
			https = append(https, i)
			continue
		}
		plain = append(plain, i)
		if a.UpstreamTLS != nil {
			v.errorf(p, "%q says http://, but the app has an upstream_tls: block; write it https://, or without a scheme", u)
		}
	}
	if len(https) == 0 {
		return
	}
	if len(looked) > 0 {
		v.errorf(indexPath(path, https[0]), "TLS is for the whole pool, and upstreams[%d] is looked up in DNS, which cannot say https://: write this entry without https:// and add an upstream_tls: block", looked[0])
		return
	}
	if len(plain) > 0 {
		v.errorf(indexPath(path, plain[0]), "TLS is for the whole pool, and upstreams[%d] says https://: write every upstream with https://", https[0])
		return
	}
	if a.UpstreamTLS == nil {
		a.UpstreamTLS = &UpstreamTLS{}
	}
}

// reported marks path as reported: later checks of it stay silent.
func (v *validator) reported(path string) {
	if v.failed == nil {
		v.failed = map[string]bool{}
	}
	v.failed[path] = true
}

// schemeAddr is the host:port of "http://host[:port]" or
// "https://host[:port]", with the scheme's default port.
func schemeAddr(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("must be host:port, or a URL with http:// or https://")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Hostname() == "":
		return "", errors.New("must be scheme://host[:port], without path, query or user")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// filePath is p as the config file means it: relative to the file's own
// directory (as Resolve makes it for good).
func (v *validator) filePath(p string) string {
	if v.file == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(v.file), p)
}

// validServerName accepts what can be sent as SNI and verified: a host
// name or an IP address.
func validServerName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	return !strings.ContainsAny(s, " \t/:@[]") && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, ".")
}

// readRoots parses a PEM bundle of CA certificates; a file with anything
// but certificates in it, or none, is an error naming the file.
func readRoots(file string) (*x509.CertPool, error) {
	certs, err := readCerts(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readCerts parses every PEM certificate in file.
func readCerts(file string) ([]*x509.Certificate, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, err
	}
	return parseCerts(file, data)
}

// readFile reads file, saying which file could not be read and why in
// fewer words than os's "open FILE: ...".
func readFile(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("cannot read %s: %w", file, pe.Err)
	}
	return data, err
}

// parseCerts parses every PEM certificate in data, read from file.
func parseCerts(file string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %q, want only CERTIFICATE blocks", file, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s has no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return certs, nil
}

// keyPair reads the client certificate and its key, reporting a problem
// at the key whose file has it.
func (v *validator) keyPair(u *UpstreamTLS, path string) *tls.Certificate {
	certFile, keyFile := v.filePath(u.CertFile), v.filePath(u.KeyFile)
	certPEM, err := readFile(certFile)
	var certs []*x509.Certificate
	if err == nil {
		certs, err = parseCerts(certFile, certPEM)
	}
	if err != nil {
		v.errorf(path+".cert_file", "%v", err)
		return nil
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		v.errorf(path+".key_file", "%v", err)
		return nil
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		v.errorf(path+".key_file", "%s has no PEM private key (-----BEGIN PRIVATE KEY-----)", keyFile)
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		v.errorf(path+".key_file", "%s does not go with %s: %v", keyFile, certFile, err)
		return nil
	}
	pair.Leaf = certs[0]
	return &pair
}

// resolve makes the block's file paths absolute against base (see
// Config.Resolve).
func (u *UpstreamTLS) resolve(base string) {
	u.CAFile = resolvePath(base, u.CAFile)
	u.CertFile = resolvePath(base, u.CertFile)
	u.KeyFile = resolvePath(base, u.KeyFile)
}
