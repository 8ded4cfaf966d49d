package config

// trustedProxies checks trusted_proxies and proxy_protocol.
func (v *validator) trustedProxies(c *Config, path string) {}
