package edge

import "strings"

// template is a value with placeholders ({client_ip}, {request_id},
// {scheme}, {host}, {method}, {path}, {query}, {uri}, {user}), split once
// so that a request only joins its parts.
type template struct {
	parts []part
	plain string // the whole value when it has no placeholder
}

type part struct {
	lit string
	ph  placeholder // 0: lit is the text
}

type placeholder uint8

const (
	phNone placeholder = iota
	phClientIP
	phRequestID
	phScheme
	phHost
	phMethod
	phPath
	phQuery
	phURI
	phUser
)

var placeholders = map[string]placeholder{
	"client_ip": phClientIP, "request_id": phRequestID, "scheme": phScheme, "host": phHost, "method": phMethod,
	"path": phPath, "query": phQuery, "uri": phURI, "user": phUser,
}

// parseTemplate splits s; an unknown {name} is kept as text.
func parseTemplate(s string) *template {
	t := &template{}
	rest := s
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		ph, ok := placeholders[rest[i+1:i+j]]
		if !ok {
			t.parts = append(t.parts, part{lit: rest[:i+j+1]})
			rest = rest[i+j+1:]
			continue
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		t.parts = append(t.parts, part{ph: ph})
		rest = rest[i+j+1:]
	}
	if rest != "" {
		t.parts = append(t.parts, part{lit: rest})
	}
	if !t.dynamic() {
		t.plain = s
	}
	return t
}

// dynamic reports whether the value depends on the request.
func (t *template) dynamic() bool {
	for _, p := range t.parts {
		if p.ph != phNone {
			return true
		}
	}
	return false
}

// expand writes the value for q.
func (t *template) expand(q *Ask) string {
	if !t.dynamic() {
		return t.plain
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.ph {
		case phNone:
			b.WriteString(p.lit)
		case phClientIP:
			b.WriteString(q.ClientIP)
		case phRequestID:
			b.WriteString(q.RequestID)
		case phScheme:
			b.WriteString(q.Scheme)
		case phHost:
			b.WriteString(q.Req.Host)
		case phMethod:
			b.WriteString(q.Req.Method)
		case phPath:
			if q.target != "" {
				b.WriteString(q.target)
			} else {
				b.WriteString(q.RawPath)
			}
		case phQuery:
			if q.Query != "" {
				b.WriteString("?" + q.Query)
			}
		case phURI:
			b.WriteString(q.Req.RequestURI)
		case phUser:
			b.WriteString(q.User)
		}
	}
	return b.String()
}
