// An Express app that behaves well behind gatehouse (or any reverse proxy).
'use strict';

const express = require('express');

const app = express();
const instance = process.env.GATEHOUSE_INSTANCE || 'local';

// 1. Bind the port gatehouse chose. A hard-coded port (3000, 8080) means
//    nothing answers where gatehouse looks: every request fails with
//    connect_refused and `gatehouse diagnose` reports port_mismatch.
const port = Number(process.env.PORT || 3000);

// 2. A public health endpoint: no auth, no redirect, no database round trip
//    that can hang. A 401/403/302-to-login here takes every instance out of
//    rotation ("probe failed with 403").
app.get('/healthz', (req, res) => res.type('text').send('ok'));

app.get('/', (req, res) => {
  res.send(`Hello from ${instance} (pid ${process.pid})\n`);
});

// Bind loopback only: gatehouse is the public front door.
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`${instance} listening on 127.0.0.1:${port}`);
});

// 3. Keep idle connections open longer than gatehouse does. gatehouse
//    reuses upstream keep-alive connections and closes idle ones after
//    upstream_idle_timeout (4s by default). Node's default keepAliveTimeout
//    is 5s: if it were shorter than gatehouse's, Node could close a socket
//    at the very moment gatehouse sends a request on it, and that request
//    would fail (a stale_connection 502, the classic intermittent 502 with
//    nothing in the app's logs). With the app's timeout well above the
//    proxy's, the proxy always closes first. headersTimeout must exceed
//    keepAliveTimeout, or Node may cut a connection that is about to be
//    reused.
server.keepAliveTimeout = 65 * 1000;
server.headersTimeout = 66 * 1000;

// 4. Drain on SIGTERM. gatehouse stops sending new requests to an instance
//    before signalling it, then waits stop_timeout before SIGKILL. Stop
//    accepting connections, let in-flight requests finish, then exit 0.
process.on('SIGTERM', () => {
  console.log(`${instance}: SIGTERM received, finishing in-flight requests`);
  server.close(() => process.exit(0));
  // Idle keep-alive sockets would hold server.close open until they time
  // out; close them now (Node >= 18.2).
  if (server.closeIdleConnections) server.closeIdleConnections();
  // Never outlive gatehouse's patience: exit before its SIGKILL.
  setTimeout(() => process.exit(1), 25 * 1000).unref();
});
