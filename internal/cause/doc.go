// Package cause owns gatehouse's failure taxonomy: the one place that maps
// how far an upstream attempt got and the error it ended with to a cause
// code, the HTTP status the client sees, and whether the attempt may be
// retried on another instance.
//
// The rule behind retries: an attempt the app provably never saw
// (connection refused, connect timeout, a failed TLS handshake, a pooled
// connection found closed before the request was written) is safe to retry for any method; one
// the app may have seen is retried only when the method is idempotent or
// the client sent an Idempotency-Key.
package cause
