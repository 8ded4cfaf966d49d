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
)

// Reload re-reads the config file and applies it to app (every app when
// app is ""; then the certificate files of the tls: block are read again
// too). Apps added or removed in the file, and changes to listen, admin,
// data_dir, tls, routes, trusted_proxies or proxy_protocol, need a restart
// of gatehouse; Reload says so rather than half-applying them. systemd is
// told RELOADING=1 at the start and READY=1 at the end.
func (s *Server) Reload(ctx context.Context, app string, p supervisor.Progress) error {
	// systemd shows the unit reloading until READY=1, which comes whether
	// the reload succeeded or not: gatehouse serves either way.
	s.notify.Reloading()
	defer s.notify.Ready()
	next, err := s.reread()
	if err != nil {
		return err
	}
	if keys := restartKeys(s.cfg, next); len(keys) > 0 {
		p("%s changed; restart gatehouse to apply it (the running gatehouse keeps what it started with)", strings.Join(keys, ", "))
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
			p("%s: removed from the config; restart gatehouse to stop it", name)
			continue
		}
		if !slices.Equal(na.Routes, s.cfg.Apps[name].Routes) {
			p("%s: routes changed; restart gatehouse to apply them", name)
		}
		if err := s.sup.App(name).Reload(ctx, na, p); err != nil {
			// The gateway keeps the settings the running instances were
			// reloaded with: a refused or failed reload changes nothing.
			errs = append(errs, err)
			continue
		}
		s.gw.UpdateApp(na)
	}
	if app != "" && s.sup.App(app) == nil {
		return fmt.Errorf("reload: no app %q (apps: %s)", app, strings.Join(s.cfg.Order, ", "))
	}
	for name := range next.Apps {
		if s.sup.App(name) == nil {
			p("%s: new in the config; restart gatehouse to start it", name)
		}
	}
	return errors.Join(errs...)
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
// the HTTPS listener's settings and certificate source, who is trusted.
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
	} {
		if k.changed {
			keys = append(keys, k.name)
		}
	}
	return keys
}
