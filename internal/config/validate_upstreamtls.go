package config

// upstreamTLS checks an app's upstream_tls: block.
func (v *validator) upstreamTLS(a *App, path string) {}
