// Package auth owns the checks that stand before a route's app: whether a
// request may reach it, and who sent it.
//
// Basic checks HTTP Basic credentials against bcrypt hashes: it caches
// successful verifications (a bcrypt costs tens of milliseconds, a signed-in
// client sends every request with its credentials), spends on every
// failure the work of a bcrypt at the users' highest cost, whatever user
// it names or none (so that no answer tells whether a name is a user's),
// and holds a failure back a second with a cap on how many wait at once,
// as the admin sign-in does.
//
// Forward asks an auth service (oauth2-proxy, Authelia, Authentik, …) about
// each request, as Traefik's ForwardAuth, nginx's auth_request and Caddy's
// forward_auth do: a 2xx lets the request through with headers copied from
// the answer; any other answer is relayed to the client as it is (a sign-in
// redirect among them); no answer is an *UnavailableError.
//
// The package decides; answering 401, 429 or 503 and writing the access
// log is the caller's. It imports nothing of gatehouse.
package auth
