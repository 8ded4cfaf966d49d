#!/usr/bin/env bash
# Static files, gatehouse against nginx serving the same directory side by
# side: a 1 KiB and a 1 MiB file, wrk over plain HTTP/1.1 with keep-alive,
# rounds interleaved. Reports requests a second and CPU time a request
# (the servers' user+system CPU over the requests served).
#
#   bench/static.sh
#   ROUNDS=5 DURATION=5 CONNS=50 bench/static.sh
#   FILES=1m.bin bench/static.sh    # one size only
#
# gatehouse runs with GOMAXPROCS unset (every core) and nginx with
# worker_processes auto, sendfile on: each as its users would run it.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-static.XXXXXX)
chmod 755 "$WORK" # nginx's workers run as nobody
source "$ROOT/bench/lib.sh"

install_peers wrk:wrk
cd "$ROOT"
go build -o "$WORK/gatehouse" ./cmd/gatehouse

mkdir -p "$WORK/www"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$WORK/www/1k.txt"
head -c $((1 << 20)) /dev/urandom >"$WORK/www/1m.bin"

NGINX_PORT=$(port)
start_nginx <<CONF
  sendfile on;
  tcp_nopush on;
  types { text/plain txt; application/octet-stream bin; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
CONF

GH_PORT=$(port); GH_ADMIN=$(port); DUMMY=$(port)
cat >"$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$GH_PORT"
admin: "127.0.0.1:$GH_ADMIN"
data_dir: $WORK/data
access_log: "off"
apps:
  files:
    upstreams: ["127.0.0.1:$DUMMY"]   # never asked: the route is static
    health: {interval: 60s}
    routes:
      - match: /
        static: {root: $WORK/www}
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" >"$WORK/gatehouse.log" 2>&1 & started $!
GH_PID=$!
wait_port "$NGINX_PORT"; wait_port "$GH_PORT"
for u in "http://127.0.0.1:$NGINX_PORT" "http://127.0.0.1:$GH_PORT"; do
  for f in 1k.txt 1m.bin; do
    cmp -s <(curl -sf "$u/$f") "$WORK/www/$f" || { echo "$u/$f does not serve the file" >&2; exit 1; }
  done
done
check_session "servers" "$NGINX_PID" "$GH_PID"

printf '%-8s %-6s %12s %12s %14s %14s\n' file round "nginx req/s" "gh req/s" "nginx µs/req" "gh µs/req"
for f in ${FILES:-1k.txt 1m.bin}; do
  for r in $(seq "$ROUNDS"); do
    read -r nrps ncpu < <(wrk_cpu "$NGINX_PID" "$DURATION" "$CONNS" "http://127.0.0.1:$NGINX_PORT/$f")
    read -r grps gcpu < <(wrk_cpu "$GH_PID" "$DURATION" "$CONNS" "http://127.0.0.1:$GH_PORT/$f")
    printf '%-8s %-6s %12s %12s %14s %14s\n' "$f" "$r" "$nrps" "$grps" "$ncpu" "$gcpu"
  done
done
