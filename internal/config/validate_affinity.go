package config

import (
	"regexp"
	"strings"
)

// cookieName is an RFC 6265 cookie-name: an HTTP token (RFC 9110 tchar),
// which leaves out spaces, controls and the separators ()<>@,;:\"/[]?={}.
var cookieName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// affinity checks an app's affinity keys. A cookie name is checked
// whenever it is written; one written (or set in code) for an app whose
// affinity is off is reported, as auto_heal.custom is without action:
// custom, since the author expects a cookie that is never sent.
func (v *validator) affinity(a *App, path string) {
	p := path + ".affinity_cookie"
	written := v.has(p) || a.AffinityCookie != DefaultAffinityCookie
	if !written {
		return
	}
	if !cookieName.MatchString(a.AffinityCookie) {
		v.errorf(p, "%q is not a valid cookie name: use letters, digits and !#$%%&'*+-.^_`|~ only, e.g. %q", a.AffinityCookie, DefaultAffinityCookie)
		return
	}
	if !a.Affinity {
		v.errorf(p, "only used with affinity: true")
	}
}

// affinityCookies reports two apps with affinity that would share one
// cookie: a browser keeps one cookie per name, host and path (it is set
// on Path=/), so each app would overwrite the other's and neither would
// keep its clients. Apps share a host when a route of one has no host or
// the same host as a route of the other.
func (v *validator) affinityCookies(c *Config) {
	var seen []*App
	for _, name := range c.appNames() {
		a := c.Apps[name]
		if a == nil || !a.Affinity {
			continue
		}
		for _, b := range seen {
			if b.AffinityCookie == a.AffinityCookie && shareHost(a.Routes, b.Routes) {
				v.errorf("apps."+name+".affinity_cookie", "%q is also the affinity cookie of app %q, on the same host: give each app its own name, e.g. affinity_cookie: %q",
					a.AffinityCookie, b.Name, a.AffinityCookie+strings.ToUpper(name[:1])+name[1:])
				break
			}
		}
		seen = append(seen, a)
	}
}

// shareHost reports whether a request for some host could be routed by a
// route of each list. Hosts are compared as the gateway compares them
// (Route.Host): "WWW.example.com." and "www.example.com", or "[::1]" and
// "::1", are one host, and one browser cookie jar.
func shareHost(r1, r2 []Route) bool {
	for i := range r1 {
		hx := r1[i].Host()
		for j := range r2 {
			if hy := r2[j].Host(); hx == "" || hy == "" || hx == hy {
				return true
			}
		}
	}
	return false
}
