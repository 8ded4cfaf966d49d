#!/usr/bin/env bash
# Side-by-side proxy benchmark: nginx, HAProxy and gatehouse in front of the
# same two Go backends, interleaved over several rounds, in three protocols:
#
#   http      plain HTTP/1.1, wrk at c=50 and c=256 (CONNS)
#   https-h1  HTTP/1.1 over TLS, wrk (OpenSSL) at the same CONNS
#   h2        HTTP/2 over TLS, h2load at 50 clients x 10 streams each and
#             256 clients x 1 stream (H2_LOADS, CLIENTSxSTREAMS)
#   handshake HTTP/1.1 over TLS with Connection: close, wrk at c=50
#             (HANDSHAKE_CONNS): a new connection and a full handshake
#             for every request (wrk resumes no session), so req/s is
#             handshakes/s and CPU per request is CPU per handshake;
#             not among the default PROTOCOLS
#
# Every client keeps its connections alive. The three proxies serve HTTPS
# with the same ECDSA P-256 certificate for 127.0.0.1 (made here with
# openssl), TLS 1.2 and 1.3 allowed, ALPN h2 and http/1.1, and TLS 1.3's
# TLS_AES_128_GCM_SHA256 (what Go picks; nginx and HAProxy are pinned to
# it, else they would take OpenSSL clients' first choice, AES-256).
# Prints requests/s, p50/p99 and proxy CPU per request as ratios to nginx
# per protocol and load, and each proxy's RSS idle and under load.
#
#   bench/proxies.sh                      # 3 rounds of 10 s per run, all protocols
#   ROUNDS=5 DURATION=15 bench/proxies.sh
#   PROTOCOLS=http bench/proxies.sh       # the plain-HTTP runs only
#   PROTOCOLS="https-h1 h2" H2_LOADS=50x10 bench/proxies.sh
#   PROTOCOLS=handshake bench/proxies.sh  # TLS handshakes per second
#   GATEHOUSE_BIN=/tmp/gh-old bench/proxies.sh   # another build of gatehouse
#
# One round is (2 CONNS x 2 protocols + 2 H2_LOADS) x 3 proxies = 18 runs of
# DURATION seconds: the default takes about 10 minutes.
# Everything listens on 127.0.0.1 only, and everything started is stopped
# on exit; each client run is killed if it overruns DURATION by 30 s.
#
# Fairness (bench/lib.sh): every server runs in the foreground as a child
# of this script, in its session: nginx with `daemon off` (its master and
# workers), HAProxy without -D, gatehouse and the backends as plain
# children, and the clients too. With autogroup scheduling a daemon
# (setsid) would get a CPU share of its own against all the rest; the
# script prints each process's session and autogroup and stops if one has
# left the session. Processes are stopped by the PIDs the script started,
# never by name.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PROTOCOLS=${PROTOCOLS:-"http https-h1 h2"}
CONNS=${CONNS:-"50 256"}
H2_LOADS=${H2_LOADS:-"50x10 256x1"}
HANDSHAKE_CONNS=${HANDSHAKE_CONNS:-50}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"


install_peers wrk:wrk h2load:nghttp2-client openssl:openssl
cd "$ROOT"
go build -o "$WORK/backend" ./bench/backend
if [ -n "${GATEHOUSE_BIN:-}" ]; then
  cp "$GATEHOUSE_BIN" "$WORK/gatehouse" # a build to compare (docs/performance.md's "before" runs)
else
  go build -o "$WORK/gatehouse" ./cmd/gatehouse
fi

start_backends

NGINX_PORT=$(port); HAPROXY_PORT=$(port); GH_PORT=$(port); GH_ADMIN=$(port)
NGINX_TLS=$(port); HAPROXY_TLS=$(port); GH_TLS=$(port)

# One certificate for all three: ECDSA P-256, self-signed, for 127.0.0.1
# (neither wrk nor h2load verifies it).
bench_cert "$WORK"
cat "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/combined.pem"
TLS13_SUITE=TLS_AES_128_GCM_SHA256

mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<CONF
# In the foreground, in this script's session (see the top): a daemon
# would get a CPU share of its own.
daemon off;
master_process on;
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  $(nginx_backends_conf)
  server {
    listen 127.0.0.1:$NGINX_PORT;
    $NGINX_PROXY
  }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_conf_command Ciphersuites $TLS13_SUITE;
    # nginx closes a connection after 1000 requests (HTTP/2 too, with
    # GOAWAY), and h2load does not reconnect: its clients would stop
    # early. HAProxy and gatehouse set no such limit.
    keepalive_requests 1000000000;
    $NGINX_PROXY
  }
}
CONF
nginx -c "$WORK/nginx.conf" & started $!
NGINX_PID=$!
wait_port "$NGINX_PORT"; wait_port "$NGINX_TLS"

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
frontend fe_tls
  bind 127.0.0.1:$HAPROXY_TLS ssl crt $WORK/combined.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 ciphersuites $TLS13_SUITE
  default_backend be
$(haproxy_backend_conf)
CONF
haproxy -f "$WORK/haproxy.cfg" > "$WORK/haproxy-access.log" 2>&1 & started $!
HAPROXY_PID=$!
wait_port "$HAPROXY_PORT"; wait_port "$HAPROXY_TLS"

cat > "$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$GH_PORT"
admin: "127.0.0.1:$GH_ADMIN"
data_dir: "$WORK/gatehouse-data"
tls:
  listen: "127.0.0.1:$GH_TLS"
  cert_file: "$WORK/cert.pem"
  key_file: "$WORK/key.pem"
  min_version: "1.2"
  http2: true
  redirect_http: false # the plain listener keeps serving, for the http runs
$(bench_app_conf)
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" > "$WORK/gatehouse.out" 2>&1 & started $!
GH_PID=$!
wait_port "$GH_PORT"; wait_port "$GH_TLS"
sleep 1 # first probes mark the upstreams ready

# Each proxy's processes: the PID this script started and its descendants
# (nginx's master and its workers).
pids_of() {
  case $1 in
    nginx) tree "$NGINX_PID" | paste -sd' ' ;;
    haproxy) tree "$HAPROXY_PID" | paste -sd' ' ;;
    gatehouse) tree "$GH_PID" | paste -sd' ' ;;
  esac
}

# Every server in this script's session, or no run.
echo "sessions: script pid $$ sid $SCRIPT_SID $(autogroup_of $$) (autogroup scheduling $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a))"
for s in "backend:$B1_PID" "backend:$B2_PID" "nginx:$NGINX_PID" "haproxy:$HAPROXY_PID" "gatehouse:$GH_PID"; do
  check_session "${s%%:*}" "${s#*:}"
  show_sessions "${s%%:*}" "${s#*:}"
done
port_of() { # NAME PROTOCOL
  case $1/$2 in
    nginx/http) echo "$NGINX_PORT" ;;
    nginx/*) echo "$NGINX_TLS" ;;
    haproxy/http) echo "$HAPROXY_PORT" ;;
    haproxy/*) echo "$HAPROXY_TLS" ;;
    gatehouse/http) echo "$GH_PORT" ;;
    gatehouse/*) echo "$GH_TLS" ;;
  esac
}
url_of() { # NAME PROTOCOL
  case $2 in
    http) echo "http://127.0.0.1:$(port_of "$1" "$2")/" ;;
    *) echo "https://127.0.0.1:$(port_of "$1" "$2")/" ;;
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
to_ms() { # wrk latency like 1.23ms, 250.00us, 1.02s
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v+0} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000} else print v }'
}

# What each proxy negotiates, once: the same protocol version, suite and
# ALPN for all three is the point of the HTTPS runs.
case " $PROTOCOLS " in *" https-h1 "*|*" h2 "*|*" handshake "*)
  for name in nginx haproxy gatehouse; do
    neg=$(timeout 10 openssl s_client -connect "127.0.0.1:$(port_of $name h2)" -alpn h2,http/1.1 -brief </dev/null 2>&1 |
      awk -F': ' '/^Protocol version|^Ciphersuite|^Peer signature type|^Server Temp Key|^ALPN protocol/{printf "%s ", $2}')
    echo "tls $name: $neg"
  done ;;
esac

HZ=$(getconf CLK_TCK)
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
for name in nginx haproxy gatehouse; do
  echo -e "idle_rss\t$name\t$(rss_kb $(pids_of $name))" >> "$RESULTS"
done

# run_client LABEL COMMAND...: runs the client (under timeout) with its
# output in $WORK/client.out and its exit status in rc, and checks that it
# ran in this script's session (showing it the first time).
CLIENT_SHOWN=
run_client() {
  local label=$1 show=
  shift
  rm -f "$WORK/client.sid"
  rc=0
  timeout $((DURATION + 30)) sh -c "$SELF_REPORT" "$WORK/client.sid" "$@" > "$WORK/client.out" 2>&1 || rc=$?
  case " $CLIENT_SHOWN " in *" $label "*) ;; *) show=1; CLIENT_SHOWN+=" $label" ;; esac
  check_report "$label" "$WORK/client.sid" $show
}
# run_wrk URL CONNS [WRK ARGS] and run_h2load URL CLIENTSxSTREAMS set rps,
# total (requests answered), p50 and p99 (ms) and errs.
run_wrk() {
  local out rc=0
  run_client wrk wrk -t"$THREADS" -c"$2" -d"${DURATION}s" --latency "${@:3}" "$1"
  out=$(cat "$WORK/client.out")
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  total=$(echo "$out" | awk '/requests in/{print $1}')
  p50=$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  [ "$rc" = 0 ] || errs+="wrk exit $rc"
}
run_h2load() {
  local out rc=0 c=${2%x*} m=${2#*x}
  # h2load prints no percentiles; its per-request log gives them.
  : > "$WORK/h2load.log"
  run_client h2load h2load -t"$THREADS" -c"$c" -m"$m" -D"$DURATION" --log-file="$WORK/h2load.log" "$1"
  out=$(cat "$WORK/client.out")
  rps=$(echo "$out" | awk '/^finished in/{print $4}')
  total=$(echo "$out" | awk '/^requests:/{print $8}')
  read -r p50 p99 < <(awk '$2 ~ /^2/{print $3}' "$WORK/h2load.log" | sort -n |
    awk '{v[NR]=$1} END{ if (NR==0) {print "0 0"; exit}; i50=int(NR*0.50); i99=int(NR*0.99); if (i50<1) i50=1; if (i99<1) i99=1; printf "%.2f %.2f\n", v[i50]/1000, v[i99]/1000 }')
  errs=$(echo "$out" | awk '/^requests:/{if ($10+$12+$14 > 0) print $10" failed "$12" errored "$14" timeout"} /^status codes:/{if ($5+$7+$9 > 0) print "non-2xx: "$0}' | tr '\n' ' ')
  [ "$rc" = 0 ] || errs+="h2load exit $rc: $(echo "$out" | grep -iv '^progress' | tail -2 | tr '\n' ' ')"
  rm -f "$WORK/h2load.log"
}

PROXIES=(nginx haproxy gatehouse)
for round in $(seq "$ROUNDS"); do
  # Rotate the order every round so no proxy always runs on a warm or a
  # tired machine.
  order=("${PROXIES[@]:$(( (round-1) % 3 ))}" "${PROXIES[@]:0:$(( (round-1) % 3 ))}")
  for proto in $PROTOCOLS; do
    case $proto in
      http|https-h1) loads=$CONNS ;;
      h2) loads=$H2_LOADS ;;
      handshake) loads=$HANDSHAKE_CONNS ;;
      *) echo "unknown protocol $proto (http, https-h1, h2, handshake)" >&2; exit 2 ;;
    esac
    for load in $loads; do
      for name in "${order[@]}"; do
        pids=$(pids_of "$name")
        before=$(cpu_ticks "$pids")
        (sleep $((DURATION / 2)); rss_kb $pids > "$WORK/rss") &
        sampler=$!
        case $proto in
          h2) run_h2load "$(url_of "$name" "$proto")" "$load" ;;
          handshake) run_wrk "$(url_of "$name" "$proto")" "$load" -H "Connection: close" ;;
          *) run_wrk "$(url_of "$name" "$proto")" "$load" ;;
        esac
        wait "$sampler"
        rps=${rps:-0} total=${total:-0} p50=${p50:-0} p99=${p99:-0}
        after=$(cpu_ticks "$pids")
        cpu_us=$(awk -v a="$after" -v b="$before" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.1f", (n>0 ? (a-b)/hz*1e6/n : 0)}')
        printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$proto" "$load" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$(cat "$WORK/rss")" >> "$RESULTS"
        printf 'round %s %-8s c=%-5s %-9s %9s req/s  p50 %6sms  p99 %7sms  cpu/req %6sus  rss %6sKiB %s\n' \
          "$round" "$proto" "$load" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$(cat "$WORK/rss")" "$errs"
      done
    done
  done
done

echo
echo "Medians over $ROUNDS rounds (ratios to nginx; req/s higher is better, p99 and cpu lower is better):"
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
runs, idle, keys = {}, {}, []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "idle_rss":
        idle[f[1]] = int(f[2])
        continue
    _, rnd, proto, load, name, rps, p50, p99, cpu, rss = f
    if (proto, load) not in keys:
        keys.append((proto, load))
    runs.setdefault((proto, load, name), []).append((float(rps), float(p50), float(p99), float(cpu), int(rss)))
print(f"{'protocol':<9} {'c':>6} {'proxy':<10} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>8} {'p99 ratio':>9} {'cpu/req us':>10} {'ratio':>6} {'rss load':>9} {'rss idle':>9}")
div = lambda a, b: a / b if b else float("nan")
for proto, load in keys:
    base = {i: st.median(x[i] for x in runs[(proto, load, "nginx")]) for i in range(5)}
    for name in ("nginx", "haproxy", "gatehouse"):
        m = {i: st.median(x[i] for x in runs[(proto, load, name)]) for i in range(5)}
        print(f"{proto:<9} {load:>6} {name:<10} {m[0]:>9.0f} {div(m[0],base[0]):>6.2f} {m[1]:>7.2f} {m[2]:>8.2f} {div(m[2],base[2]):>9.2f} {m[3]:>10.1f} {div(m[3],base[3]):>6.2f} {m[4]/1024:>8.1f}M {idle[name]/1024:>8.1f}M")
PY
