package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
)

// AdminTokenEnv names the environment variable that, when set, is the
// admin API's token in place of admin_token.
const AdminTokenEnv = "GATEHOUSE_ADMIN_TOKEN"

// Preflight checks what gatehouse run refuses to start on that Parse
// cannot see, because it depends on the files and environment gatehouse
// starts in: the tls: certificate and key must be readable and go
// together, acme's ca_roots must hold certificates, static roots must
// be directories, and an admin listener
// off loopback needs a token (admin_token or GATEHOUSE_ADMIN_TOKEN).
// Problems come back as Errors placed like Parse's, so that gatehouse
// validate and gatehouse run report them alike. Parse leaves these out
// because a reload parses the config again, and there a broken
// certificate file keeps the certificate being served instead.
func (c *Config) Preflight() error {
	v := &validator{file: c.File, pos: c.pos}
	v.tlsFiles(c.TLS, "tls")
	v.staticRoots(c)
	if os.Getenv(AdminTokenEnv) == "" && c.AdminToken == "" && !LoopbackOnly(c.Admin) {
		v.errorf("admin", "%q is not a loopback address: set admin_token in the config or %s, or bind admin to 127.0.0.1", c.Admin, AdminTokenEnv)
	}
	return v.errs.err()
}

// CheckOverrides checks listen and admin once command-line flags have
// replaced them (flags maps each replaced key to its flag, "listen" to
// "--listen"), as Validate checks them in a file: each is host:port, and
// no two of gatehouse's listeners share an address. A problem is named
// by its flag, without the file's line, which no longer says the value.
func (c *Config) CheckOverrides(flags map[string]string) error {
	v := &validator{pos: positions{}}
	for _, key := range []string{"listen", "admin"} {
		if _, ok := flags[key]; !ok {
			continue
		}
		v.pos[key] = 0 // given, so that a clash is reported at the flag
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		v.address(key, addr)
	}
	if len(v.errs) == 0 {
		v.listenerClash(c)
	}
	for _, e := range v.errs {
		if flag, ok := flags[e.Path]; ok {
			e.Path = flag
		}
	}
	return v.errs.err()
}

// PreflightApp checks what Preflight checks of the app named name (its
// static roots are directories), its problems placed like Parse's. A
// reload asks it before it changes anything, so that a refusal names
// the file, line and key to fix, as gatehouse run's would.
func (c *Config) PreflightApp(name string) error {
	v := &validator{file: c.File, pos: c.pos}
	v.appStaticRoots(c.Apps[name], name)
	return v.errs.err()
}

// LoopbackOnly reports whether addr (host:port) listens on loopback
// only. An empty host (":9901") listens everywhere.
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsFiles reads the files a tls: block names, as the HTTPS listener
// will at start, reporting each problem at the key whose file has it.
// What it accepts is what crypto/tls accepts (a cert_file that also holds
// the key, say), so that no config that runs is refused.
func (v *validator) tlsFiles(t *TLS, path string) {
	if t == nil {
		return
	}
	if t.ACME != nil && t.ACME.CARoots != "" {
		file := v.filePath(t.ACME.CARoots)
		data, err := readFile(file)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(data) {
			err = noCertificate(file)
		}
		if err != nil {
			v.errorf(path+".acme.ca_roots", "%v", err)
		}
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return // Parse reported the missing half
	}
	certFile, keyFile := v.filePath(t.CertFile), v.filePath(t.KeyFile)
	certPEM, err := readFile(certFile)
	if err == nil {
		err = firstCertificate(certFile, certPEM)
	}
	if err != nil {
		v.errorf(path+".cert_file", "%v", err)
		return
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		v.errorf(path+".key_file", "%v", err)
		return
	}
	if !hasPEM(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		v.errorf(path+".key_file", "%s has no PEM private key (-----BEGIN PRIVATE KEY-----)", keyFile)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		v.errorf(path+".key_file", "%s does not go with %s: %v", keyFile, certFile, err)
	}
}

// firstCertificate checks that data, read from file, starts its chain
// with a certificate that parses, the one served.
func firstCertificate(file string, data []byte) error {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return noCertificate(file)
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return nil
		}
	}
}

func noCertificate(file string) error {
	return fmt.Errorf("%s has no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
}

// hasPEM reports whether data holds a PEM block of a type ok accepts.
func hasPEM(data []byte, ok func(typ string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}
