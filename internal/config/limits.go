package config

import (
	"math"
	"syscall"
)

// inheritLimits gives each app, for every AppLimits key the app did not
// write (or wrote with no value), the top-level value, so that readers of
// a *Config see each app's effective limits and never merge the two
// levels themselves. written is the decoder's record, so a key written as
// 0 counts as written and is validated rather than replaced.
func (c *Config) inheritLimits(written func(path string) bool) {
	top := c.Limits
	for name, app := range c.Apps {
		if app == nil {
			continue
		}
		p := "apps." + name + ".limits."
		if !written(p + "request_body") {
			app.Limits.RequestBody = top.RequestBody
		}
		if !written(p + "response_head") {
			app.Limits.ResponseHead = top.ResponseHead
		}
		if !written(p + "body_timeout") {
			app.Limits.BodyTimeout = top.BodyTimeout
		}
		if !written(p + "tunnel_idle_timeout") {
			app.Limits.TunnelIdleTimeout = top.TunnelIdleTimeout
		}
		if !written(p + "response_buffer") {
			app.Limits.ResponseBuffer = top.ResponseBuffer
		}
		if !written(p + "request_buffer") {
			app.Limits.RequestBuffer = top.RequestBuffer
		}
	}
}

// MaxConnections is how many client connections each listener serves at
// once: Limits.MaxConnections when set, else half the process's soft
// open-file limit (RLIMIT_NOFILE), at least 64. The other half is left for
// upstream connections, log files and the instances' pipes, so that
// accepting clients can never starve them of descriptors.
func (c *Config) MaxConnections() int {
	if c != nil && c.Limits.MaxConnections > 0 {
		return c.Limits.MaxConnections
	}
	var rl syscall.Rlimit
	err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return autoMaxConnections(rl.Cur, err)
}

// MaxConnectionsPerIP is limits.max_connections_per_ip, or, when it is
// 0, a quarter of MaxConnections (at least 1).
func (c *Config) MaxConnectionsPerIP() int {
	if c != nil && c.Limits.MaxConnectionsPerIP > 0 {
		return c.Limits.MaxConnectionsPerIP
	}
	return max(c.MaxConnections()/4, 1)
}

// Bounds of the automatic MaxConnections.
const (
	// minAutoConnections is the floor, for a process started with a tiny
	// open-file limit: below it a gateway is not useful.
	minAutoConnections = 64
	// fallbackNoFile stands in for the open-file limit when it cannot be
	// read; 1024 is the usual Linux soft limit.
	fallbackNoFile = 1024
)

// autoMaxConnections is half of the open-file limit nofile, at least
// minAutoConnections; err is Getrlimit's, and an unreadable limit counts as
// fallbackNoFile. An unlimited (RLIM_INFINITY) or huge limit is capped at
// what an int holds.
func autoMaxConnections(nofile uint64, err error) int {
	if err != nil {
		nofile = fallbackNoFile
	}
	half := nofile / 2
	if half > math.MaxInt32 {
		half = math.MaxInt32
	}
	return max(int(half), minAutoConnections)
}

// limits checks the top-level limits: block.
func (v *validator) limits(l *Limits, path string) {
	v.headSize(path+".request_head", l.RequestHead)
	v.headSize(path+".response_head", l.ResponseHead)
	if l.MaxConnections < 0 {
		v.errorf(path+".max_connections", "must be ≥ 0 (0 = automatic), got %d", l.MaxConnections)
	}
	if l.MaxConnectionsPerIP < 0 {
		v.errorf(path+".max_connections_per_ip", "must be ≥ 0 (0 = automatic), got %d", l.MaxConnectionsPerIP)
	}
	v.positive(path+".head_timeout", l.HeadTimeout)
	v.positive(path+".body_timeout", l.BodyTimeout)
	v.positive(path+".keepalive_timeout", l.KeepaliveTimeout)
	v.positive(path+".send_timeout", l.SendTimeout)
	v.positive(path+".tunnel_idle_timeout", l.TunnelIdleTimeout)
}

// appLimits checks an app's limits: block. A value equal to the top-level
// one and not written for the app was inherited, and the top-level check
// already reports it if it is wrong; reporting it again for every app
// would bury the one line to fix.
func (v *validator) appLimits(l *AppLimits, top *Limits, path string) {
	if v.has(path+".response_head") || l.ResponseHead != top.ResponseHead {
		v.headSize(path+".response_head", l.ResponseHead)
	}
	if v.has(path+".body_timeout") || l.BodyTimeout != top.BodyTimeout {
		v.positive(path+".body_timeout", l.BodyTimeout)
	}
	if v.has(path+".tunnel_idle_timeout") || l.TunnelIdleTimeout != top.TunnelIdleTimeout {
		v.positive(path+".tunnel_idle_timeout", l.TunnelIdleTimeout)
	}
	// RequestBody: any size is valid, 0 is unlimited, and the decoder
	// already rejects a negative one.
}

// headSize checks a request or response head limit.
func (v *validator) headSize(path string, s Size) {
	switch {
	case s < MinHeadSize:
		v.errorf(path, "must be at least %s, got %s", MinHeadSize, s)
	case s > MaxHeadSize:
		v.errorf(path, "must be at most %s, got %s", MaxHeadSize, s)
	}
}
