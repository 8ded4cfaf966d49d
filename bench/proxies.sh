#!/usr/bin/env bash
# Side-by-side proxy benchmark: nginx, HAProxy and gatehouse in front of the
# same two Go backends, measured with wrk at c=50 and c=256, interleaved
# over several rounds. Prints requests/s, p50/p99 and proxy CPU per request
# as ratios to nginx, and each proxy's RSS idle and under load.
#
#   bench/proxies.sh                 # 3 rounds of 10s per run
#   ROUNDS=5 DURATION=15 bench/proxies.sh
#
# Everything listens on 127.0.0.1 only, and everything started is stopped
# on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"50 256"}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

install_peers() {
  local need=()
  command -v nginx >/dev/null || need+=(nginx-light)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Debian starts services on install; the benchmark runs its own.
  pkill -x nginx 2>/dev/null || true
  pkill -x haproxy 2>/dev/null || true
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

install_peers
cd "$ROOT"
go build -o "$WORK/backend" ./bench/backend
go build -o "$WORK/gatehouse" ./cmd/gatehouse

B1=$(port); B2=$(port)
"$WORK/backend" -addr "127.0.0.1:$B1" & PIDS+=($!)
"$WORK/backend" -addr "127.0.0.1:$B2" & PIDS+=($!)
wait_port "$B1"; wait_port "$B2"

NGINX_PORT=$(port); HAPROXY_PORT=$(port); GH_PORT=$(port); GH_ADMIN=$(port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  upstream backends { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$WORK/nginx.conf"
wait_port "$NGINX_PORT"

cat > "$WORK/haproxy.cfg" <<CONF
global
  maxconn 8192
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  balance leastconn
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
CONF
haproxy -f "$WORK/haproxy.cfg" > "$WORK/haproxy-access.log" 2>&1 & PIDS+=($!)
HAPROXY_PID=$!
wait_port "$HAPROXY_PORT"

cat > "$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$GH_PORT"
admin: "127.0.0.1:$GH_ADMIN"
data_dir: "$WORK/gatehouse-data"
apps:
  bench:
    upstreams: ["127.0.0.1:$B1", "127.0.0.1:$B2"]
    health: {interval: 5s}
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" > "$WORK/gatehouse.out" 2>&1 & PIDS+=($!)
GH_PID=$!
wait_port "$GH_PORT"
sleep 1 # first probes mark the upstreams ready

nginx_pids() { pgrep -f "nginx: " | tr '\n' ' '; }
pids_of() {
  case $1 in
    nginx) nginx_pids ;;
    haproxy) echo "$HAPROXY_PID" ;;
    gatehouse) echo "$GH_PID" ;;
  esac
}
port_of() {
  case $1 in
    nginx) echo "$NGINX_PORT" ;;
    haproxy) echo "$HAPROXY_PORT" ;;
    gatehouse) echo "$GH_PORT" ;;
  esac
}
# cpu_ticks PIDS: utime+stime of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in $1; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo "$t"
}
rss_kb() {
  local t=0 p
  for p in $1; do
    [ -r "/proc/$p/status" ] || continue
    t=$((t + $(awk '/^VmRSS/{print $2}' "/proc/$p/status")))
  done
  echo "$t"
}
to_ms() { # wrk latency like 1.23ms, 250.00us, 1.02s
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v+0} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000} else print v }'
}

HZ=$(getconf CLK_TCK)
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
for name in nginx haproxy gatehouse; do
  echo -e "idle_rss\t$name\t$(rss_kb "$(pids_of $name)")" >> "$RESULTS"
done

PROXIES=(nginx haproxy gatehouse)
for round in $(seq "$ROUNDS"); do
  # Rotate the order every round so no proxy always runs on a warm or a
  # tired machine.
  order=("${PROXIES[@]:$(( (round-1) % 3 ))}" "${PROXIES[@]:0:$(( (round-1) % 3 ))}")
  for c in $CONNS; do
    for name in "${order[@]}"; do
      pids=$(pids_of "$name")
      before=$(cpu_ticks "$pids")
      (sleep $((DURATION / 2)); rss_kb "$pids" > "$WORK/rss") &
      sampler=$!
      out=$(wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:$(port_of "$name")/")
      wait "$sampler"
      after=$(cpu_ticks "$pids")
      rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
      total=$(echo "$out" | awk '/requests in/{print $1}')
      p50=$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')")
      p99=$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")
      errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
      cpu_us=$(awk -v a="$after" -v b="$before" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.1f", (a-b)/hz*1e6/n}')
      printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$(cat "$WORK/rss")" >> "$RESULTS"
      printf 'round %s c=%-3s %-9s %9s req/s  p50 %6sms  p99 %7sms  cpu/req %6sus  rss %6sKiB %s\n' \
        "$round" "$c" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$(cat "$WORK/rss")" "$errs"
    done
  done
done

echo
echo "Medians over $ROUNDS rounds (ratios to nginx; req/s higher is better, p99 and cpu lower is better):"
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
runs, idle = {}, {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "idle_rss":
        idle[f[1]] = int(f[2])
        continue
    _, rnd, c, name, rps, p50, p99, cpu, rss = f
    runs.setdefault((int(c), name), []).append((float(rps), float(p50), float(p99), float(cpu), int(rss)))
print(f"{'c':>4} {'proxy':<10} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>8} {'p99 ratio':>9} {'cpu/req us':>10} {'ratio':>6} {'rss load':>9} {'rss idle':>9}")
for c in sorted({k[0] for k in runs}):
    base = {i: st.median(x[i] for x in runs[(c, "nginx")]) for i in range(5)}
    for name in ("nginx", "haproxy", "gatehouse"):
        m = {i: st.median(x[i] for x in runs[(c, name)]) for i in range(5)}
        print(f"{c:>4} {name:<10} {m[0]:>9.0f} {m[0]/base[0]:>6.2f} {m[1]:>7.2f} {m[2]:>8.2f} {m[2]/base[2]:>9.2f} {m[3]:>10.1f} {m[3]/base[3]:>6.2f} {m[4]/1024:>8.1f}M {idle[name]/1024:>8.1f}M")
PY
