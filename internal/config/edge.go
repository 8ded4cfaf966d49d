package config

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// TLS is the tls: block: HTTPS on a second public listener, with
// certificates from files or obtained over ACME. Absent means no HTTPS.
// When present, the plain listener (listen:) redirects to it, except for
// ACME's HTTP-01 challenge path.
type TLS struct {
	// Listen is the HTTPS listener's address. Default ":8443".
	Listen string `yaml:"listen" secret:"false"`
	// CertFile and KeyFile are a PEM certificate chain and its key. They
	// are read again when either file changes and on SIGHUP, without
	// dropping connections. Either these or ACME; both is an error. No
	// default; relative to the config file.
	CertFile string `yaml:"cert_file" secret:"false"`
	// KeyFile is the PEM private key of CertFile; the two go together.
	// No default; relative to the config file.
	KeyFile string `yaml:"key_file" secret:"false"`
	// ACME obtains and renews certificates automatically. nil (absent)
	// means certificates from CertFile and KeyFile.
	ACME *ACME `yaml:"acme" secret:"false"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or
	// "1.3".
	MinVersion string `yaml:"min_version" secret:"false"`
	// HTTP2 offers HTTP/2 over TLS (ALPN "h2"). Default true; the app is
	// still spoken to in HTTP/1.1.
	HTTP2 bool `yaml:"http2" secret:"false"`
	// RedirectHTTP makes the plain listener answer 308 to the same URL
	// over HTTPS (ACME's /.well-known/acme-challenge/ path excepted).
	// Default true; false serves plain HTTP as well.
	RedirectHTTP bool `yaml:"redirect_http" secret:"false"`
	// HSTS is the max-age of the Strict-Transport-Security header sent on
	// HTTPS responses. Default 0: no header (opt-in, as it is sticky in
	// browsers).
	HSTS Duration `yaml:"hsts" secret:"false"`
}

// ACME is the tls.acme: block.
type ACME struct {
	// Domains are the host names to obtain certificates for. Required.
	Domains []string `yaml:"domains" secret:"false"`
	// Email is the ACME account's contact. Default none.
	Email string `yaml:"email" secret:"false"`
	// Directory is the ACME directory URL. Default Let's Encrypt's
	// production directory; a private CA's (or Pebble's) works.
	Directory string `yaml:"directory" secret:"false"`
	// CARoots is a PEM file of roots that the directory's own HTTPS
	// certificate is verified against, for a private CA. Default: the
	// system roots.
	CARoots string `yaml:"ca_roots" secret:"false"`
	// Challenges are the challenge types offered: "http-01" (answered on
	// the plain listener) and "tls-alpn-01" (on the HTTPS listener).
	// Default both.
	Challenges []string `yaml:"challenges" secret:"false"`
	// RenewBefore renews a certificate when this little of its lifetime
	// is left, as a fraction written "33%". Default 33%.
	RenewBefore string `yaml:"renew_before" secret:"false"`
}

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// NewTLS returns the defaults of a tls: block that is present.
func NewTLS() *TLS {
	return &TLS{Listen: ":8443", MinVersion: "1.2", HTTP2: true, RedirectHTTP: true}
}

// NewACME returns the defaults of a tls.acme: block that is present.
func NewACME() *ACME {
	return &ACME{Directory: DefaultACMEDirectory, Challenges: []string{"http-01", "tls-alpn-01"}, RenewBefore: "33%"}
}

// UpstreamTLS is an external pool's upstream_tls: block: its upstreams
// (and their probes) are spoken to over HTTPS. Absent means plain HTTP.
type UpstreamTLS struct {
	// ServerName is sent as SNI and verified against the certificate.
	// Default: each upstream's host.
	ServerName string `yaml:"server_name" secret:"false"`
	// CAFile is a PEM bundle the upstreams' certificates are verified
	// against. Default: the system roots.
	CAFile string `yaml:"ca_file" secret:"false"`
	// CertFile and KeyFile are a client certificate offered to upstreams
	// that ask for one. Default none.
	CertFile string `yaml:"cert_file" secret:"false"`
	// KeyFile is the PEM private key of CertFile; the two go together.
	// Default none.
	KeyFile string `yaml:"key_file" secret:"false"`
	// InsecureSkipVerify accepts any certificate. Default false; probes
	// still report what is wrong with it.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" secret:"false"`

	// roots and cert are CAFile and the CertFile/KeyFile pair as Validate
	// read and parsed them: what was checked is what is used, and a file
	// changed after startup changes nothing until a reload. cert holds a
	// private key; Redacted copies neither.
	roots *x509.CertPool   `secret:"false"`
	cert  *tls.Certificate `secret:"true"`
}

// Roots is the pool parsed from CAFile by Validate; nil means the system
// roots.
func (u *UpstreamTLS) Roots() *x509.CertPool { return u.roots }

// ClientCertificate is the pair parsed from CertFile and KeyFile by
// Validate; nil when none is configured.
func (u *UpstreamTLS) ClientCertificate() *tls.Certificate { return u.cert }

// DefaultAffinityCookie is the affinity cookie's name, as App Service's;
// its SameSite=None; Secure twin adds "SameSite".
const DefaultAffinityCookie = "ARRAffinity"

// DefaultProxyProtocolTimeout bounds reading a PROXY protocol header.
const DefaultProxyProtocolTimeout = 5 * time.Second
