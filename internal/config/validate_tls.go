package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// tls checks the tls: block.
func (v *validator) tls(t *TLS, path string) {
	if t == nil {
		return
	}
	v.address(path+".listen", t.Listen)
	v.certSource(t, path)
	if _, err := t.TLSMinVersion(); err != nil {
		v.errorf(path+".min_version", "%v", err)
	}
	if t.HSTS < 0 {
		v.errorf(path+".hsts", "must be ≥ 0 (0 = no Strict-Transport-Security header)")
	}
	if t.ACME != nil {
		v.acme(t.ACME, path+".acme")
	}
}

// certSource checks that the block says where its certificate comes from:
// a file pair or ACME, exactly one of them.
func (v *validator) certSource(t *TLS, path string) {
	files := t.CertFile != "" || t.KeyFile != ""
	switch {
	case files && t.ACME != nil:
		v.errorf(path+".acme", "cert_file/key_file and acme are exclusive: use one certificate source")
	case t.CertFile != "" && t.KeyFile == "":
		v.errorf(path+".key_file", "required with cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		v.errorf(path+".cert_file", "required with key_file")
	case !files && t.ACME == nil:
		v.errorf(path, "needs a certificate: cert_file and key_file, or acme: {domains: [example.com]}")
	}
}

// acmeChallenges are the challenge types gatehouse can answer itself;
// DNS-01 would need a DNS provider's API.
var acmeChallenges = []string{"http-01", "tls-alpn-01"}

func (v *validator) acme(a *ACME, path string) {
	if len(a.Domains) == 0 {
		v.errorf(path+".domains", "required, e.g. [example.com, www.example.com]")
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		p := fmt.Sprintf("%s.domains[%d]", path, i)
		if err := checkDomain(d); err != nil {
			v.errorf(p, "%v", err)
		} else if seen[strings.ToLower(d)] {
			v.errorf(p, "duplicate domain %q", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.errorf(path+".directory", "%q must be an absolute https URL, e.g. %q", a.Directory, DefaultACMEDirectory)
	}
	if len(a.Challenges) == 0 {
		v.errorf(path+".challenges", "must not be empty: offer http-01, tls-alpn-01 or both")
	}
	for i, c := range a.Challenges {
		if !slices.Contains(acmeChallenges, c) {
			v.errorf(fmt.Sprintf("%s.challenges[%d]", path, i), "%q must be one of %s", c, strings.Join(acmeChallenges, ", "))
		}
	}
	if _, err := a.RenewRatio(); err != nil {
		v.errorf(path+".renew_before", "%v", err)
	}
}

// checkDomain accepts a DNS host name that HTTP-01 and TLS-ALPN-01 can
// prove: no wildcard (those need DNS-01) and no IP address.
func checkDomain(d string) error {
	switch {
	case strings.HasPrefix(d, "*."):
		return fmt.Errorf("%q: wildcard certificates need the DNS-01 challenge, which gatehouse does not do; list each host name", d)
	case net.ParseIP(d) != nil:
		return fmt.Errorf("%q: an IP address; list a host name that resolves to this server", d)
	case !validHostName(d):
		return fmt.Errorf("%q is not a valid host name, e.g. \"app.example.com\"", d)
	}
	return nil
}

// validHostName: dot-separated labels of letters, digits and inner
// hyphens, each 1-63 characters, 253 in all, not all-numeric at the end.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

// TLSMinVersion is min_version as a crypto/tls constant.
func (t *TLS) TLSMinVersion() (uint16, error) {
	switch t.MinVersion {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q must be \"1.2\" or \"1.3\"", t.MinVersion)
}

// RenewRatio is renew_before as the fraction of a certificate's lifetime
// left when it is renewed: "33%" is 0.33.
func (a *ACME) RenewRatio() (float64, error) {
	s := strings.TrimSpace(a.RenewBefore)
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || !strings.HasSuffix(s, "%") || n < 1 || n > 99 {
		return 0, fmt.Errorf("%q must be a percentage of the certificate's lifetime from 1%% to 99%%, e.g. \"33%%\"", a.RenewBefore)
	}
	return float64(n) / 100, nil
}

// HasChallenge reports whether the challenge type c is offered.
func (a *ACME) HasChallenge(c string) bool { return slices.Contains(a.Challenges, c) }
