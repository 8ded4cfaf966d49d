#!/usr/bin/env bash
# Compression of proxied answers, gatehouse against nginx side by side in
# front of the same backend: a 16 KiB HTML page (the start of
# docs/config.md, as HTML), gzip at level 5 on both (nginx: gzip on,
# gzip_comp_level 5; gatehouse: compress: {encodings: [gzip], level: 5}),
# wrk asking for gzip over keep-alive HTTP/1.1, rounds interleaved.
# Reports requests a second, the compressed size, and each proxy's CPU time
# a request (user+system, the backend's not counted).
#
#   bench/compress.sh
#   ROUNDS=5 DURATION=5 LEVEL=1 bench/compress.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
LEVEL=${LEVEL:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-compress.XXXXXX)
chmod 755 "$WORK"
source "$ROOT/bench/lib.sh"

install_peers wrk:wrk
cd "$ROOT"
go build -o "$WORK/gatehouse" ./cmd/gatehouse
go build -o "$WORK/backend" ./bench/backend
{ echo "<!doctype html><title>config</title><pre>"; head -c 16000 docs/config.md | sed 's/&/\&amp;/g; s/</\&lt;/g'; echo "</pre>"; } >"$WORK/page.html"

B=$(port)
"$WORK/backend" -addr "127.0.0.1:$B" -body "$WORK/page.html" & started $!
wait_port "$B"

NGINX_PORT=$(port)
start_nginx <<CONF
  gzip on;
  gzip_comp_level $LEVEL;
  gzip_proxied any;
  upstream be { server 127.0.0.1:$B; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
CONF

GH_PORT=$(port); GH_ADMIN=$(port)
cat >"$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$GH_PORT"
admin: "127.0.0.1:$GH_ADMIN"
data_dir: $WORK/data
access_log: "off"
apps:
  page:
    upstreams: ["127.0.0.1:$B"]
    compress: {encodings: [gzip], level: $LEVEL}
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" >"$WORK/gatehouse.log" 2>&1 & started $!
GH_PID=$!
wait_port "$NGINX_PORT"; wait_port "$GH_PORT"
check_session "servers" "$NGINX_PID" "$GH_PID"
for u in "http://127.0.0.1:$NGINX_PORT/" "http://127.0.0.1:$GH_PORT/"; do
  cmp -s <(curl -sf --compressed "$u") "$WORK/page.html" || { echo "$u does not serve the page" >&2; exit 1; }
  enc=$(curl -sf -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "$u")
  echo "$u: $(wc -c <"$WORK/page.html") bytes, $enc gzipped"
done

printf '%-6s %12s %12s %14s %14s %8s\n' round "nginx req/s" "gh req/s" "nginx µs/req" "gh µs/req" ratio
for r in $(seq "$ROUNDS"); do
  read -r nrps ncpu < <(wrk_cpu "$NGINX_PID" "$DURATION" "$CONNS" "http://127.0.0.1:$NGINX_PORT/" -H "Accept-Encoding: gzip")
  read -r grps gcpu < <(wrk_cpu "$GH_PID" "$DURATION" "$CONNS" "http://127.0.0.1:$GH_PORT/" -H "Accept-Encoding: gzip")
  printf '%-6s %12s %12s %14s %14s %8.2f\n' "$r" "$nrps" "$grps" "$ncpu" "$gcpu" "$(awk -v a="$gcpu" -v b="$ncpu" 'BEGIN{print a/b}')"
done
