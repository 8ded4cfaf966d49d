package front

import (
	"net/url"
	"strings"
)

// setTarget sets u from an origin-form target ("/p?q"), the only form the
// front serves itself. A path with escapes goes through
// url.ParseRequestURI, as net/http would.
func setTarget(u *url.URL, target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, _ := strings.Cut(target, "?")
	if strings.IndexByte(path, '%') >= 0 {
		v, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		*u = *v
		return true
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}
