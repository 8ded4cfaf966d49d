package edge

import (
	"net/http"
	"net/textproto"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// headerOps is a request_headers or response_headers block, compiled:
// removals, then sets, then adds, each in a fixed order.
type headerOps struct {
	remove   []string // canonical names
	prefixes []string // canonical prefixes of "X-Debug-*"
	set, add []headerValue
}

type headerValue struct {
	name string
	val  *template
}

func compileHeaderOps(c *config.HeaderOps) *headerOps {
	if c == nil || len(c.Set)+len(c.Add)+len(c.Remove) == 0 {
		return nil
	}
	o := &headerOps{}
	for _, k := range c.Remove {
		if p, ok := strings.CutSuffix(k, "*"); ok {
			o.prefixes = append(o.prefixes, textproto.CanonicalMIMEHeaderKey(p))
			continue
		}
		o.remove = append(o.remove, textproto.CanonicalMIMEHeaderKey(k))
	}
	o.set = values(c.Set)
	o.add = values(c.Add)
	return o
}

func values(m map[string]string) []headerValue {
	out := make([]headerValue, 0, len(m))
	for k, v := range m {
		out = append(out, headerValue{textproto.CanonicalMIMEHeaderKey(k), parseTemplate(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (o *headerOps) apply(h http.Header, q *Ask) {
	if o == nil {
		return
	}
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, p := range o.prefixes {
		for k := range h {
			if strings.HasPrefix(k, p) {
				delete(h, k)
			}
		}
	}
	for _, v := range o.set {
		h[v.name] = []string{v.val.expand(q)}
	}
	for _, v := range o.add {
		h[v.name] = append(h[v.name], v.val.expand(q))
	}
}

// securityHeaders are security_headers' fields; Strict-Transport-Security
// only over HTTPS (a browser ignores it over HTTP).
var securityHeaders = [...]struct{ name, val string }{
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"X-Frame-Options", "SAMEORIGIN"},
}

const hsts = "max-age=31536000"

// EditResponse applies security_headers and response_headers to an
// answer's header map, whoever wrote the answer.
func (rt *Route) EditResponse(h http.Header, q *Ask) {
	if rt.security != "" {
		force := rt.security == config.SecurityForce
		for _, s := range securityHeaders {
			if _, ok := h[s.name]; force || !ok {
				h[s.name] = []string{s.val}
			}
		}
		if q.Scheme == "https" {
			if _, ok := h["Strict-Transport-Security"]; force || !ok {
				h["Strict-Transport-Security"] = []string{hsts}
			}
		}
	}
	if q.decision != nil && len(q.decision.SetCookie) > 0 {
		// An auth service that refreshes its session on a 2xx needs
		// its cookie to reach the browser.
		h["Set-Cookie"] = append(h["Set-Cookie"], q.decision.SetCookie...)
	}
	rt.respHeaders.apply(h, q)
}
