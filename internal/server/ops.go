package server

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Reload re-reads the config file and applies it to app (every app when
// app is ""; then the certificate files of the tls: block are read again
// too). Apps added or removed in the file, and changes to listen, admin,
// tls, h2c, trusted_proxies, proxy_protocol, the global limits,
// admin_token, sample_interval or the logs (log_format, access_log,
// log_files), need a new gatehouse process: a reload
// of every app applies them with an upgrade (see Upgrade), after the
// apps' own changes; a reload of one app says so. A data_dir change is
// the one an upgrade cannot carry (the new process would not find the
// running instances): Reload says to stop and start. A config that the
// gateway or any app it reloads refuses (routes that cannot be built, a
// switch between command and upstreams), or a reload while one of those
// apps is busy with another operation (supervisor.ErrBusy), is refused
// as a whole: nothing of it is applied.
func (s *Server) Reload(ctx context.Context, app string, p supervisor.Progress) error {
	s.notify.Reloading()
	defer s.notify.Ready()
	next, err := s.reread()
	if err != nil {
		return err
	}
	var needs []string // what needs a new process
	keys := restartKeys(s.cfg, next)
	if slices.Contains(keys, "data_dir") {
		const moved = "data_dir changed; stop and start gatehouse to move it (the running gatehouse keeps what it started with)"
		// An event too: the run terminal shows a reload by its events.
		s.events.Emit(telemetry.Event{Type: telemetry.EventReload, Detail: moved})
		p(moved)
		keys = slices.DeleteFunc(keys, func(k string) bool { return k == "data_dir" })
	}
	needs = append(needs, keys...)
	if app != "" && s.sup.App(app) == nil {
		return fmt.Errorf("reload: no app %q (apps: %s)", app, strings.Join(s.cfg.Order, ", "))
	}
	// Every app the reload changes is taken first, and its part checked,
	// before any is applied: an app busy with an operation of its own, or
	// a config one app refuses, must not leave another's instances
	// replaced (or any setting changed) first.
	held := map[string]*supervisor.Reservation{}
	defer func() {
		for _, r := range held {
			r.Release()
		}
	}()
	for _, name := range s.cfg.Order {
		if _, ok := next.Apps[name]; !ok || (app != "" && name != app) {
			continue
		}
		r, err := s.sup.App(name).Reserve()
		if err != nil {
			return err
		}
		held[name] = r
	}
	if err := s.checkReload(app, next); err != nil {
		return err
	}
	var errs []error
	if app == "" && s.certs != nil {
		// The certificate files are read again (SIGHUP, gatehouse
		// reload), without dropping a connection.
		if err := s.certs.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("certificates: %w", err))
		}
	}
	for _, name := range s.cfg.Order {
		if app != "" && name != app {
			continue
		}
		na, ok := next.Apps[name]
		if !ok {
			needs = append(needs, name+" removed")
			continue
		}
		if err := held[name].Reload(ctx, na, p); err != nil {
			errs = append(errs, err)
			// The gateway keeps the settings the running instances run
			// with: the previous ones after a refused or failed reload,
			// the new ones when only the instance count fell short.
			var short *supervisor.ScaleError
			if !errors.As(err, &short) {
				continue
			}
		}
		if err := s.gw.UpdateApp(na); err != nil {
			errs = append(errs, err)
		}
	}
	if app == "" {
		for _, name := range next.Order {
			if s.sup.App(name) == nil {
				needs = append(needs, name+" added")
			}
		}
	}
	// Each app was released by its reload; an upgrade takes them all.
	for _, r := range held {
		r.Release()
	}
	if len(needs) > 0 {
		errs = append(errs, s.newProcessFor(ctx, app, needs, p))
	}
	return errors.Join(errs...)
}

// checkReload reports every reason the gateway or the supervisor would
// refuse next for app (every app when app is "").
func (s *Server) checkReload(app string, next *config.Config) error {
	var errs []error
	for _, name := range s.cfg.Order {
		na, ok := next.Apps[name]
		if (app != "" && name != app) || !ok {
			continue
		}
		// The config's own check first: it names the file, line and key
		// of what the gateway would also refuse.
		if err := next.PreflightApp(name); err != nil {
			errs = append(errs, fmt.Errorf("reload %s: %w", name, err))
		} else if err := s.gw.CheckApp(na); err != nil {
			errs = append(errs, fmt.Errorf("reload %s: %w", name, err))
		}
		if err := s.sup.App(name).CheckReload(na); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newProcessFor applies the changes needs names, which only a new
// gatehouse process can, through an upgrade; when that cannot be done
// here it says what would.
func (s *Server) newProcessFor(ctx context.Context, app string, needs []string, p supervisor.Progress) error {
	what := strings.Join(needs, ", ")
	if app != "" || !s.upgrade.possible() {
		p("%s: takes a new gatehouse process; run gatehouse upgrade (or gatehouse reload of every app) to apply it", what)
		return nil
	}
	p("%s: a new gatehouse process takes over to apply it (an upgrade; the apps run on)", what)
	if _, err := s.Upgrade(ctx, 0, p); err != nil {
		return fmt.Errorf("apply %s: %w", what, err)
	}
	return nil
}

// reread loads the config the server was started from again; a config
// built from a command line has nothing to re-read and reloads as is.
func (s *Server) reread() (*config.Config, error) {
	if s.cfg.File == "" {
		return s.cfg, nil
	}
	next, err := config.Load(s.cfg.File)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if s.override != nil {
		if err := s.override(next); err != nil {
			return nil, fmt.Errorf("reload: %w", err)
		}
	}
	return next, nil
}

// App returns the named app or an error that lists the apps.
func (s *Server) App(name string) (*supervisor.App, error) {
	if a := s.sup.App(name); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("no app %q (apps: %s)", name, strings.Join(s.cfg.Order, ", "))
}

// Instance finds the app of an instance id ("web-2").
func (s *Server) Instance(id string) (*supervisor.App, error) {
	for _, a := range s.sup.Apps() {
		for _, in := range a.Instances() {
			if in.ID == id {
				return a, nil
			}
		}
	}
	return nil, fmt.Errorf("no instance %q", id)
}

// restartKeys lists the top-level keys that differ between prev and next
// and that only a restart applies: the listeners, where data is kept,
// the HTTPS listener's settings and certificate source, who is trusted,
// the listeners' limits (read when they are made; an app's own share of
// them is also applied by its reload), the admin token, the sampling
// interval, the shutdown delay and health prefix, the alerts: block
// (its receivers and thresholds are the manager's, made once), the
// dumps: block and the tracing: block (its exporter is made once).
func restartKeys(prev, next *config.Config) []string {
	var keys []string
	for _, k := range []struct {
		name    string
		changed bool
	}{
		{"listen", prev.Listen != next.Listen},
		{"admin", prev.Admin != next.Admin},
		{"data_dir", prev.DataDir != next.DataDir},
		{"tls", !reflect.DeepEqual(prev.TLS, next.TLS)},
		{"h2c", prev.H2C != next.H2C},
		{"trusted_proxies", !slices.Equal(prev.TrustedProxies, next.TrustedProxies)},
		{"proxy_protocol", prev.ProxyProtocol != next.ProxyProtocol},
		{"limits", prev.Limits != next.Limits},
		{"admin_token", prev.AdminToken != next.AdminToken},
		{"sample_interval", prev.SampleInterval != next.SampleInterval},
		{"shutdown_delay", prev.ShutdownDelay != next.ShutdownDelay},
		{"health_prefix", prev.HealthPrefix != next.HealthPrefix},
		{"alerts", !reflect.DeepEqual(prev.Alerts, next.Alerts)},
		{"log_format", prev.LogFormat != next.LogFormat},
		{"access_log", prev.AccessLog != next.AccessLog},
		{"log_files", !reflect.DeepEqual(prev.LogFiles, next.LogFiles)},
		{"dumps", prev.Dumps != next.Dumps},
		{"tracing", !reflect.DeepEqual(prev.Tracing, next.Tracing)},
	} {
		if k.changed {
			keys = append(keys, k.name)
		}
	}
	return keys
}
