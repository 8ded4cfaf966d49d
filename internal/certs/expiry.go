package certs

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Expiry warnings: a certificate with less than a week or a third of its
// lifetime left is about to expire, unless gatehouse is renewing it in
// time. cert_expiring is emitted at most once a day per certificate.
const (
	expiringLeft  = 7 * 24 * time.Hour
	expiringEvery = 24 * time.Hour
)

// checkExpiry emits cert_expiring for each certificate that is expiring
// and was not warned of in the last day.
func (m *Manager) checkExpiry(now time.Time) {
	current := map[string]bool{}
	for _, s := range m.Status() {
		if s.Serial == "" {
			continue
		}
		current[s.Serial] = true
		if !m.expiring(s, now) {
			continue
		}
		m.mu.Lock()
		last, warned := m.warned[s.Serial]
		if !warned || now.Sub(last) >= expiringEvery {
			m.warned[s.Serial] = now
		}
		m.mu.Unlock()
		if !warned || now.Sub(last) >= expiringEvery {
			m.emit(telemetry.EventCertExpiring, s.Names[0], expiringTrigger(s, now), expiringDetail(s, now))
		}
	}
	m.mu.Lock()
	for serial := range m.warned {
		if !current[serial] {
			delete(m.warned, serial) // replaced: its successor is judged afresh
		}
	}
	m.mu.Unlock()
}

// forgetWarning lets the next checkExpiry warn of the certificate with
// serial again at once, whenever it last did.
func (m *Manager) forgetWarning(serial string) {
	m.mu.Lock()
	delete(m.warned, serial)
	m.mu.Unlock()
}

// expiring: little time left and, for an ACME certificate, its renewal
// overdue: in the renewal window for two renewal checks, or failed there.
// Renewal starts at renew_before, which may be a third of the lifetime
// itself, and must have a chance to happen before anyone is warned.
func (m *Manager) expiring(s Status, now time.Time) bool {
	life, left := s.NotAfter.Sub(s.NotBefore), s.NotAfter.Sub(now)
	if left >= expiringLeft && left >= life/3 {
		return false
	}
	if !s.Managed {
		return true
	}
	windowStart := s.NotAfter.Add(-time.Duration(float64(life) * m.acme.ratio))
	if now.Before(windowStart) {
		return false
	}
	return now.Sub(windowStart) >= 2*m.opts.RenewCheckInterval || s.LastErrorTime.After(windowStart)
}

func expiringTrigger(s Status, now time.Time) string {
	expired := !now.Before(s.NotAfter)
	switch {
	case s.Managed && expired:
		return TriggerExpired
	case s.Managed:
		return TriggerExpiring
	case expired:
		return TriggerFileExpired
	}
	return TriggerFileExpiring
}

func expiringDetail(s Status, now time.Time) string {
	left := s.NotAfter.Sub(now)
	when := "expires in " + roughly(left)
	if left <= 0 {
		when = "expired " + roughly(-left) + " ago"
	}
	d := fmt.Sprintf("%s: certificate %s (not after %s, serial %s)", s.Names[0], when, s.NotAfter.UTC().Format(time.RFC3339), s.Serial)
	switch {
	case !s.Managed:
		d += "; replace " + s.CertFile + " and " + s.KeyFile + " (gatehouse reads them again when they change)"
	case s.LastError != "":
		d += "; renewal is failing: " + s.LastError
	default:
		d += "; renewal has not happened yet"
	}
	return d
}

// roughly formats d in its largest units: "6d 23h", "5h 2m", "40s".
func roughly(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
