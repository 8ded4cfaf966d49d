package metrics_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The expiry gauge is read from the certificates at scrape time: one
// series per name, negative once expired, none for a certificate not
// obtained yet, and nothing at all without TLS.
func TestCertificateExpiryDays(t *testing.T) {
	m := metrics.New(supervisor.New(config.Default(), supervisor.Options{}))
	// By the certificate's name, its one label.
	gather := func() map[string]float64 {
		t.Helper()
		return gathered(t, m, "gatehouse_tls_certificate_expiry_days", func(ls []*dto.LabelPair) string { return ls[0].GetValue() })
	}
	if got := gather(); len(got) != 0 {
		t.Errorf("without certificates: %v, want no series", got)
	}
	now := time.Now()
	m.SetCertificates(func() []metrics.Certificate {
		return []metrics.Certificate{
			{Name: "a.example.com", NotAfter: now.Add(36 * time.Hour)},
			{Name: "old.example.com", NotAfter: now.Add(-12 * time.Hour)},
			{Name: "pending.example.com"},
		}
	})
	got := gather()
	want := map[string]float64{"a.example.com": 1.5, "old.example.com": -0.5}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for name, w := range want {
		if math.Abs(got[name]-w) > 0.01 {
			t.Errorf("%s: %.3f days, want %.1f", name, got[name], w)
		}
	}
}

// The alerts gauge is read at scrape time and the notifications counter
// counts by receiver and result; neither has series without alerts.
func TestAlertMetrics(t *testing.T) {
	m := metrics.New(supervisor.New(config.Default(), supervisor.Options{}))
	// By every label, "name=value," each.
	series := func(name string) map[string]float64 {
		t.Helper()
		return gathered(t, m, name, func(ls []*dto.LabelPair) string {
			k := ""
			for _, l := range ls {
				k += l.GetName() + "=" + l.GetValue() + ","
			}
			return k
		})
	}
	if got := series("gatehouse_alerts_firing"); len(got) != 0 {
		t.Errorf("without alerts: %v", got)
	}
	m.SetAlerts(func() []metrics.AlertCount {
		return []metrics.AlertCount{{Alert: "no_ready_instance", App: "web", Firing: 1}, {Alert: "cert_expiring", Firing: 2}}
	})
	m.ObserveNotification("ops", "sent")
	m.ObserveNotification("ops", "sent")
	m.ObserveNotification("ops", "dropped")
	if diff := cmp.Diff(map[string]float64{"alert=no_ready_instance,app=web,": 1, "alert=cert_expiring,app=,": 2}, series("gatehouse_alerts_firing")); diff != "" {
		t.Errorf("gatehouse_alerts_firing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"receiver=ops,result=sent,": 2, "receiver=ops,result=dropped,": 1}, series("gatehouse_alert_notifications_total")); diff != "" {
		t.Errorf("gatehouse_alert_notifications_total (-want +got):\n%s", diff)
	}
}

// An app's start_timeout count is 0 from its first start on, not born at
// 1 with the first timeout: increase() over a series born at 1 is 0, and
// the GatehouseStartFailure rule (increase(…[10m]) > 0) would never see
// an app's first start failure.
func TestStartTimeoutSeriesStartsAtZero(t *testing.T) {
	m := metrics.New(supervisor.New(config.Default(), supervisor.Options{}))
	count := func() (float64, bool) {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "gatehouse_events_total" {
				continue
			}
			for _, s := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["app"] == "web" && labels["type"] == telemetry.EventStartTimeout {
					return s.GetCounter().GetValue(), true
				}
			}
		}
		return 0, false
	}
	m.ObserveEvent(telemetry.Event{App: "web", Instance: "web-1", Type: telemetry.EventStart})
	if v, ok := count(); !ok || v != 0 {
		t.Errorf("after a start: start_timeout series %v (present %v), want 0", v, ok)
	}
	m.ObserveEvent(telemetry.Event{App: "web", Instance: "web-1", Type: telemetry.EventStartTimeout})
	if v, _ := count(); v != 1 {
		t.Errorf("after a start_timeout: %v, want 1", v)
	}
}

// gathered is the series of family name in m's registry now, gauge or
// counter values, keyed by key of each series' labels.
func gathered(t *testing.T, m *metrics.Metrics, name string, key func([]*dto.LabelPair) string) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if g := s.GetGauge(); g != nil {
				out[key(s.GetLabel())] = g.GetValue()
			} else {
				out[key(s.GetLabel())] = s.GetCounter().GetValue()
			}
		}
	}
	return out
}
