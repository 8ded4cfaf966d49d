#!/usr/bin/env bash
# Where a request's CPU goes, gatehouse against nginx: the
# syscalls each proxy makes per request (perf's syscall tracepoints over a
# whole wrk run), and its CPU per request split into user and system time,
# with its context switches (from /proc). Both proxies log every request
# and keep their upstream connections alive, in front of the same two
# backends; runs alternate between them.
#
#   bench/syscalls.sh                  # wrk at c=50, 2 runs of 8 s each
#   CONNS=256 RUNS=3 bench/syscalls.sh
#   PROTO=https bench/syscalls.sh      # over TLS (ECDSA P-256, TLS 1.3)
#   PROTO=h2 CONNS=256 STREAMS=1 bench/syscalls.sh   # HTTP/2 over TLS, h2load
#
# The counts run under perf (its tracepoints slow every syscall), the CPU
# split in runs of their own without it. Everything listens on 127.0.0.1;
# only what the script started is stopped on exit. Needs perf (Debian's
# linux-perf) and root for its tracepoints.
set -euo pipefail

CONNS=${CONNS:-50}
DURATION=${DURATION:-8}
RUNS=${RUNS:-2}
PROTO=${PROTO:-http}
STREAMS=${STREAMS:-1}
case $PROTO in http|https|h2) ;; *) echo "PROTO is http, https or h2" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-syscalls.XXXXXX)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

install_missing wrk:wrk nginx:nginx-light perf:linux-perf openssl:openssl h2load:nghttp2-client
cd "$ROOT"
go build -o "$WORK/backend" ./bench/backend
go build -o "$WORK/gatehouse" ./cmd/gatehouse
start_backends

NGINX_PORT=$(port); GH_PORT=$(port); GH_ADMIN=$(port)
mkdir -p "$WORK/nginx"
# Over TLS both listen with the same certificate and TLS 1.3 suite as in
# bench/proxies.sh.
NGINX_TLS="" GH_TLS_CONF=""
if [ "$PROTO" != http ]; then
  bench_cert "$WORK"
  h2=""
  if [ "$PROTO" = h2 ]; then h2=http2; fi
  NGINX_TLS="ssl $h2; ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    keepalive_requests 1000000000"
  GH_TLS_CONF="tls:
  listen: \"127.0.0.1:$GH_PORT\"
  cert_file: \"$WORK/cert.pem\"
  key_file: \"$WORK/key.pem\"
  http2: true
  redirect_http: false"
  GH_PLAIN=$(port)
fi
cat >"$WORK/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  $(nginx_backends_conf)
  server {
    listen 127.0.0.1:$NGINX_PORT ${NGINX_TLS:-};
    $NGINX_PROXY
  }
}
CONF
nginx -c "$WORK/nginx.conf" & started $!
NGINX_PID=$!
cat >"$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:${GH_PLAIN:-$GH_PORT}"
admin: "127.0.0.1:$GH_ADMIN"
data_dir: "$WORK/gh-data"
$GH_TLS_CONF
$(bench_app_conf)
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" >"$WORK/gatehouse.out" 2>&1 & started $!
GH_PID=$!
wait_port "$NGINX_PORT"; wait_port "$GH_PORT"
sleep 1

# split PID...: user ticks, system ticks and context switches so far of
# the PIDs and their descendants, every thread's.
split() {
  local u=0 s=0 c=0 p t
  for p in $(tree "$@"); do
    u=$((u + $(stat_field "$p" 14 || echo 0)))
    s=$((s + $(stat_field "$p" 15 || echo 0)))
    for t in /proc/"$p"/task/*; do
      c=$((c + $(awk '/ctxt_switches/ {n += $2} END {print n + 0}' "$t/status" 2>/dev/null || echo 0)))
    done
  done
  echo "$u $s $c"
}

# load [perf stat ARGS --]: runs the load against $url, under perf when
# asked; prints the requests served.
load() {
  if [ "$PROTO" = h2 ]; then
    "$@" h2load -c "$CONNS" -m "$STREAMS" -D "$DURATION" "$url" >"$WORK/load.out"
    awk '/^requests:/ {print $8}' "$WORK/load.out"
  else
    "$@" wrk -t 2 -c "$CONNS" -d "${DURATION}s" "$url" >"$WORK/load.out"
    awk '/requests in/ {print $1}' "$WORK/load.out"
  fi
}

HZ=$(getconf CLK_TCK)
: >"$WORK/results"
for run in $(seq "$RUNS"); do
  order=(nginx gatehouse); [ $((run % 2)) -eq 0 ] && order=(gatehouse nginx)
  for name in "${order[@]}"; do
    pid=$NGINX_PID port=$NGINX_PORT
    [ "$name" = gatehouse ] && pid=$GH_PID port=$GH_PORT
    scheme=$PROTO; [ "$PROTO" = h2 ] && scheme=https
    url="$scheme://127.0.0.1:$port/"
    # The CPU split, without perf.
    read -r u0 s0 c0 < <(split "$pid")
    reqs=$(load)
    read -r u1 s1 c1 < <(split "$pid")
    # The syscalls, under perf.
    pids=$(tree "$pid" | paste -sd,)
    counted=$(load perf stat -e 'syscalls:sys_enter_*' -x, -o "$WORK/perf.out" -p "$pids" --)
    calls=$(awk -F, -v n="$counted" '$1 ~ /^[0-9]+$/ && $1 > 0 {sub("syscalls:sys_enter_", "", $3); printf "%s %.2f\n", $3, $1 / n}' "$WORK/perf.out" |
      sort -k2 -rn | awk '$2 >= 0.01 {printf "%s%s %s", sep, $1, $2; sep=", "}')
    total=$(awk -F, -v n="$counted" '$1 ~ /^[0-9]+$/ {t += $1} END {printf "%.2f", t / n}' "$WORK/perf.out")
    awk -v name="$name" -v run="$run" -v r="$reqs" -v d="$DURATION" -v hz="$HZ" \
      -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v total="$total" -v calls="$calls" 'BEGIN {
      printf "run %s %-9s %6.0f req/s  user %5.1fus  sys %5.1fus  ctxsw %.2f  syscalls %s/req: %s\n",
        run, name, r / d, u / hz * 1e6 / r, s / hz * 1e6 / r, c / r, total, calls
    }' | tee -a "$WORK/results"
  done
done
