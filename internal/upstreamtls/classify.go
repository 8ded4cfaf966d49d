package upstreamtls

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"
)

// Kind is what went wrong with TLS to an upstream.
type Kind uint8

const (
	// None: the error is not a TLS failure.
	None Kind = iota
	// Expired: a certificate of the chain is past its NotAfter.
	Expired
	// NotYetValid: a certificate of the chain is before its NotBefore.
	NotYetValid
	// UnknownAuthority: the chain leads to no trusted root.
	UnknownAuthority
	// NameMismatch: the certificate is not for the server name.
	NameMismatch
	// BadCertificate: the certificate is wrong in another way (its key
	// usage, a CA that may not sign...).
	BadCertificate
	// ClientCertRefused: the upstream ended the handshake with an alert
	// about gatehouse's client certificate: none was sent and it wants
	// one, or it does not trust the one sent.
	ClientCertRefused
	// Refused: the upstream ended the handshake with another alert (no
	// common version or cipher...).
	Refused
	// NotTLS: the upstream answered something that is not TLS.
	NotTLS
	// Failed: the handshake broke otherwise (the upstream closed or reset
	// the connection during it).
	Failed
)

// The phrases details start with, one per kind; DetailKind reads them
// back.
var phrases = [...]string{
	Expired:           "certificate expired",
	NotYetValid:       "certificate not yet valid",
	UnknownAuthority:  "unknown authority",
	NameMismatch:      "name mismatch",
	BadCertificate:    "invalid certificate",
	ClientCertRefused: "client certificate refused",
	Refused:           "handshake failed",
	NotTLS:            "not TLS",
	Failed:            "handshake failed",
}

// Classify names the TLS failure err is, or wraps, by its type; None when
// it is none. It does not allocate: the gateway's classifier calls it on
// every failed attempt.
func Classify(err error) Kind {
	k, _ := find(err)
	return k
}

// find walks err's chain for the most specific TLS failure and returns
// its kind and the error that says so.
func find(err error) (Kind, error) {
	kind, at := None, error(nil)
	for err != nil {
		switch e := err.(type) {
		case x509.CertificateInvalidError:
			return invalidKind(e), err
		case x509.UnknownAuthorityError, x509.SystemRootsError:
			return UnknownAuthority, err
		case x509.HostnameError:
			return NameMismatch, err
		case tls.RecordHeaderError:
			return NotTLS, err
		case tls.AlertError:
			return alertKind(e), err
		case *net.OpError:
			if a, ok := remoteAlert(e); ok {
				return alertKind(a), err
			}
		case *tls.CertificateVerificationError:
			kind, at = BadCertificate, err
		case *HandshakeError:
			if kind == None {
				kind, at = Failed, err
			}
		case interface{ Unwrap() []error }:
			for _, w := range e.Unwrap() {
				if k, at := find(w); k != None {
					return k, at
				}
			}
			return kind, at
		}
		err = errors.Unwrap(err)
	}
	return kind, at
}

func invalidKind(e x509.CertificateInvalidError) Kind {
	if e.Reason != x509.Expired {
		return BadCertificate
	}
	if e.Cert != nil && time.Now().Before(e.Cert.NotBefore) {
		return NotYetValid
	}
	return Expired
}

// remoteAlert returns the alert an upstream sent, as crypto/tls reports
// it: a *net.OpError "remote error" around a value of its unexported alert
// type, a uint8 (tls.AlertError is exported only for QUIC).
func remoteAlert(e *net.OpError) (tls.AlertError, bool) {
	if e.Op != "remote error" || e.Err == nil {
		return 0, false
	}
	t := reflect.TypeOf(e.Err)
	if t.PkgPath() != "crypto/tls" || t.Kind() != reflect.Uint8 {
		return 0, false
	}
	return tls.AlertError(reflect.ValueOf(e.Err).Uint()), true
}

// The alerts a server sends about its peer's certificate: gatehouse's
// client certificate (RFC 8446 §6.2). certificate_required is TLS 1.3's
// for one that was not sent.
const (
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertCertificateRequired    = 116
)

func alertKind(a tls.AlertError) Kind {
	switch a {
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked, alertCertificateExpired,
		alertCertificateUnknown, alertUnknownCA, alertCertificateRequired:
		return ClientCertRefused
	}
	return Refused
}

// Describe says what a TLS failure is, for people: a probe's detail, an
// access log entry's. An error that is no TLS failure is described by its
// own text.
func Describe(err error) string {
	k, at := find(err)
	switch k {
	case None:
		return err.Error()
	case Expired:
		e := at.(x509.CertificateInvalidError)
		return fmt.Sprintf("%s on %s%s", phrases[k], day(e.Cert.NotAfter), whose(e.Cert))
	case NotYetValid:
		e := at.(x509.CertificateInvalidError)
		return fmt.Sprintf("%s (valid from %s)%s", phrases[k], day(e.Cert.NotBefore), whose(e.Cert))
	case UnknownAuthority:
		return phrases[k] + unknownAuthority(at)
	case NameMismatch:
		e := at.(x509.HostnameError)
		return fmt.Sprintf("%s (certificate is for %s, not %s)", phrases[k], certNames(e.Certificate), e.Host)
	case BadCertificate:
		if e, ok := at.(*tls.CertificateVerificationError); ok {
			at = e.Err
		}
		return phrases[k] + ": " + strings.TrimPrefix(at.Error(), "x509: ")
	case ClientCertRefused, Refused:
		return phrases[k] + ": " + alertText(at)
	case NotTLS:
		if e := at.(tls.RecordHeaderError); bytes.HasPrefix(e.RecordHeader[:], []byte("HTTP/")) {
			return phrases[k] + " (the upstream answered plain HTTP)"
		}
		return phrases[k] + " (the upstream answered plain HTTP?)"
	}
	return phrases[k] + ": " + broken(at.(*HandshakeError).Err)
}

func alertText(at error) string {
	var a tls.AlertError
	switch e := at.(type) {
	case tls.AlertError:
		a = e
	case *net.OpError:
		a, _ = remoteAlert(e)
	}
	text := strings.TrimPrefix(a.Error(), "tls: ")
	if a == alertCertificateRequired {
		text += " (the upstream wants one, and none it accepts was sent)"
	}
	return text
}

// broken says how a handshake broke that no TLS error explains.
func broken(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the upstream closed the connection (is it TLS on that port?)"
	case errors.Is(err, syscall.ECONNRESET):
		return "the upstream reset the connection (is it TLS on that port?)"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return strings.TrimPrefix(err.Error(), "tls: ")
}

func unknownAuthority(at error) string {
	e, ok := at.(x509.UnknownAuthorityError)
	switch {
	case !ok:
		return " (no system roots to verify against; set upstream_tls.ca_file)"
	case e.Cert == nil:
		return ""
	case bytes.Equal(e.Cert.RawIssuer, e.Cert.RawSubject):
		return fmt.Sprintf(" (self-signed certificate %q)", name(e.Cert.Subject.CommonName, e.Cert.Subject.String()))
	}
	return fmt.Sprintf(" (certificate issued by %q)", name(e.Cert.Issuer.CommonName, e.Cert.Issuer.String()))
}

// certNames lists what a certificate is valid for: its DNS and IP SANs, a
// few of them.
func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	const most = 5
	switch {
	case len(names) == 0 && c.Subject.CommonName != "":
		return c.Subject.CommonName + " (common name only, no SAN)"
	case len(names) == 0:
		return "no name"
	case len(names) > most:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
	}
	return strings.Join(names, ", ")
}

// whose names a CA certificate that failed: a leaf needs no name, it is
// the upstream's own.
func whose(c *x509.Certificate) string {
	if c == nil || !c.IsCA {
		return ""
	}
	return fmt.Sprintf(" (CA certificate %q)", name(c.Subject.CommonName, c.Subject.String()))
}

func name(cn, full string) string {
	if cn != "" {
		return cn
	}
	return full
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// DetailKind reads back the kind of TLS failure that a detail written
// from Describe names (a probe's, in status or a snapshot; an access log
// entry's): the kind whose phrase comes first in it; None when it names
// none. Refused reads back as Failed: both are "handshake failed".
func DetailKind(detail string) Kind {
	kind, at := None, len(detail)
	for k := Expired; k <= Failed; k++ {
		if i := strings.Index(detail, phrases[k]); i >= 0 && i < at && k != Refused {
			kind, at = k, i
		}
	}
	return kind
}
