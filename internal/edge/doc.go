// Package edge owns what gatehouse does itself with a request on one of
// an app's routes, before the app is asked and to the answer after: the
// features people otherwise keep a web server in front for.
//
// A route's config (the route's own keys, else the app's) is compiled
// once into a Route. On the request's way in, Admit applies, in this
// order: the access rules (allow, deny: 403 access_denied), a redirect,
// authentication (basic_auth: 401 auth_required; forward_auth: its
// answer relayed, or 503 auth_unavailable), the rate limit (429
// rate_limited with Retry-After). Then Target gives the path the app is
// sent (strip_prefix, rewrite, add_prefix) and EditRequest the header
// fields it sees. On the way out EditResponse applies response_headers
// and security_headers to every answer, the app's, a static file's or
// gatehouse's own. Compression and static files are the compress and
// static packages; a Route holds the configured ones for the gateway.
//
// The gateway calls these in its one request path (route → edge →
// forward or static → answer → log); edge imports nothing of the
// gateway.
package edge
