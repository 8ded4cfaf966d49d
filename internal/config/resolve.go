package config

import "path/filepath"

// Resolve makes DataDir, each app's Dir, the tls: files, the
// upstream_tls files and static roots absolute, relative to baseDir, the config file's
// directory, or the working directory when baseDir is "". Relative paths
// are resolved once, here, because instances and log files
// are opened long after startup and must not depend on the working
// directory at that moment. Absolute paths are kept.
func (c *Config) Resolve(baseDir string) {
	c.DataDir = resolvePath(baseDir, c.DataDir)
	if t := c.TLS; t != nil {
		// Certificate files are read again on every change and SIGHUP.
		t.CertFile = resolvePath(baseDir, t.CertFile)
		t.KeyFile = resolvePath(baseDir, t.KeyFile)
		if t.ACME != nil {
			t.ACME.CARoots = resolvePath(baseDir, t.ACME.CARoots)
		}
	}
	for _, app := range c.Apps {
		if app != nil {
			app.Dir = resolvePath(baseDir, app.Dir)
			if app.UpstreamTLS != nil {
				app.UpstreamTLS.resolve(baseDir)
			}
			for i := range app.Routes {
				if st := app.Routes[i].Static; st != nil {
					st.Root = resolvePath(baseDir, st.Root)
				}
			}
		}
	}
}

func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join(base, p))
	if err != nil {
		// Only when the working directory is gone; the relative path is
		// still the best description of what the user meant.
		return filepath.Join(base, p)
	}
	return abs
}
