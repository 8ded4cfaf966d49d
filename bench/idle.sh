#!/usr/bin/env bash
# Idle-connection benchmark: what N idle keep-alive client connections cost
# nginx, HAProxy and gatehouse in memory, each in front of the same two Go
# backends as in bench/proxies.sh (configured as there, plain HTTP/1.1, or
# HTTP/2 with prior knowledge with PROTO=h2c).
#
# For each proxy in turn (a fresh process each time, the order rotating
# every round) bench/cmd/idleconns opens N connections, PARALLEL at a time;
# each sends one request, reads the whole answer and then stays idle. The
# script reads the proxy's memory before the connections and again after
# all N have been open and idle for HOLD seconds, and counts the proxy's
# ESTABLISHED sockets with ss; then idleconns checks that every connection
# is still open (a non-blocking peek at each) and sends one more request on
# CHECK of them. Memory is the sum of VmRSS (/proc/PID/status) over the
# proxy's processes: nginx's master and workers, HAProxy's one process,
# gatehouse's one process. Prints the growth in total and per connection.
# What a proxy sets aside at start for its configured limits is in its
# "before": nginx allocates and touches its worker_connections array (about
# 0.4 KiB per slot, N + 1024 slots in each worker), HAProxy its table of
# descriptors; gatehouse allocates per connection.
#
#   bench/idle.sh                 # N=8000, then N2=20000 if ulimit -n allows
#   N=2000 N2= HOLD=3 bench/idle.sh
#   ROUNDS=3 bench/idle.sh
#   PROXIES=gatehouse N=18500 N2= bench/idle.sh   # the most one process holds here
#   PROTO=h2c N=2000 N2= bench/idle.sh  # idle HTTP/2 connections (prior knowledge)
#   PROTO=h2 N=2000 N2= bench/idle.sh   # idle HTTP/2 connections over TLS
#   PROTO=https N=2000 N2= bench/idle.sh  # idle HTTP/1.1 connections over TLS
#   GATEHOUSE_BIN=/tmp/gh-old PROXIES=gatehouse bench/idle.sh  # another build
#
# PROTO=h2c holds HTTP/2 connections instead, each after one stream: the
# three proxies listen for HTTP/2 with prior knowledge (nginx `listen
# ... http2`, HAProxy `proto h2`, gatehouse `h2c: true`). PROTO=https and
# PROTO=h2 hold TLS connections (HTTP/1.1, and HTTP/2 chosen by ALPN),
# every proxy with the same ECDSA P-256 certificate, TLS 1.3 between
# Go's client and each of them; a handshake per connection makes these
# runs slower to open.
#
# A size runs only if the open-file limit (the soft limit, raised here to
# the hard one) holds 2 x (N + 256) + 512 descriptors: HAProxy reserves two
# per connection it may accept (client and server side) and refuses to
# start when its maxconn (N + 256) does not fit; 20000 needs 41024.
# Without HAProxy (PROXIES, default "nginx haproxy gatehouse") a size needs
# N + 1024 + 512: the client connections, the room beside them, and the
# rest (the client side is another process, with a limit of its own).
# SOURCES=K spreads the client connections over 127.0.0.1..127.0.0.K (one
# address holds 20000 of them to one port).
#
# Fairness as in bench/proxies.sh (bench/lib.sh): every server and the
# client run in the foreground in this script's session (checked and
# printed), and processes are stopped only by the PIDs this script started.
# Everything listens on 127.0.0.1 only; every client run is bounded
# (timeout) and everything started is stopped on exit.
set -euo pipefail

N=${N:-8000}
N2=${N2-20000}
ROUNDS=${ROUNDS:-1}
HOLD=${HOLD:-5}
CHECK=${CHECK:-100}
PARALLEL=${PARALLEL:-64}
SOURCES=${SOURCES:-1}
# Room beside N client connections in nginx's worker_connections and
# gatehouse's max_connections (upstream connections, logs), and in
# HAProxy's maxconn.
ROOM=1024
HA_ROOM=256
# The idle timeout of all three: longer than opening N connections (up
# to 120 s, TLS handshakes included) and holding them, so that none is
# closed as idle before it is counted.
IDLE_TIMEOUT=600s
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-idle.XXXXXX)
PROTO=${PROTO:-http}
# How each proxy listens for PROTO: nginx's listen parameters, HAProxy's
# bind options, gatehouse's h2c and tls keys (its plain listener then
# takes a port of its own, unused).
CRT=$WORK/combined.pem
NGINX_LISTEN="" NGINX_CERT="" HA_BIND="" GH_H2C="" GH_TLS=""
case $PROTO in
  http) ;;
  h2c) NGINX_LISTEN=" http2"; HA_BIND=" proto h2"; GH_H2C="h2c: true" ;;
  https | h2)
    NGINX_LISTEN=" ssl"; HA_BIND=" ssl crt $CRT alpn http/1.1"; GH_TLS=false
    [ "$PROTO" = h2 ] && { NGINX_LISTEN=" ssl http2"; HA_BIND=" ssl crt $CRT alpn h2,http/1.1"; GH_TLS=true; }
    NGINX_CERT="ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;" ;;
  *) echo "PROTO is http, h2c, https or h2" >&2; exit 2 ;;
esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"


install_peers

# Every process started from here inherits the raised limit.
ulimit -Sn "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
SIZES=()
read -r -a PROXIES <<< "${PROXIES:-nginx haproxy gatehouse}"
need() {
  case " ${PROXIES[*]} " in
    *" haproxy "*) echo $((2 * ($1 + HA_ROOM) + 512)) ;;
    *) echo $(($1 + ROOM + 512)) ;;
  esac
}
for s in $N $N2; do
  if [ "$NOFILE" = unlimited ] || [ "$(need "$s")" -le "$NOFILE" ]; then
    SIZES+=("$s")
  else
    echo "skipping N=$s: it needs an open-file limit of $(need "$s") (HAProxy, when run, takes 2 per connection), and ulimit -n is $NOFILE (hard limit $(ulimit -Hn))"
  fi
done
[ ${#SIZES[@]} -gt 0 ] || { echo "no size fits ulimit -n $NOFILE" >&2; exit 2; }
MAXN=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -1)
[ "$NOFILE" = unlimited ] && NOFILE=$(need "$MAXN")

cd "$ROOT"
go build -o "$WORK/backend" ./bench/backend
if [ -n "${GATEHOUSE_BIN:-}" ]; then
  cp "$GATEHOUSE_BIN" "$WORK/gatehouse" # another build, to compare
else
  go build -o "$WORK/gatehouse" ./cmd/gatehouse
fi
go build -o "$WORK/idleconns" ./bench/cmd/idleconns

if [ "$PROTO" = https ] || [ "$PROTO" = h2 ]; then
  bench_cert "$WORK"
  cat "$WORK/cert.pem" "$WORK/key.pem" > "$CRT"
fi

start_backends
echo "sessions: script pid $$ sid $SCRIPT_SID $(autogroup_of $$) (autogroup scheduling $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a))"
for p in "$B1_PID" "$B2_PID"; do
  check_session backend "$p"
  show_sessions backend "$p"
done
echo "protocol $PROTO; open-file limit $NOFILE; sizes ${SIZES[*]}; hold ${HOLD}s; memory: sum of VmRSS over each proxy's processes"
echo "limits for N=$MAXN: nginx worker_connections $((MAXN + ROOM)) (allocated at start, in each worker), HAProxy maxconn $((MAXN + HA_ROOM)), gatehouse max_connections $((MAXN + ROOM))"

# start_proxy NAME: a fresh proxy in the foreground, as a child of this
# script, listening on a new port; sets PROXY_PID and PROXY_PORT. The
# limits leave room for MAXN client connections: nginx's
# worker_connections (per worker, client and upstream connections
# together), HAProxy's maxconn, gatehouse's limits.max_connections (its
# automatic value is half the open-file limit) and max_connections_per_ip
# (automatic: a quarter of max_connections; every client here is
# 127.0.0.1, and neither peer bounds one address).
start_proxy() {
  PROXY_PORT=$(port)
  local dir="$WORK/run-$1"
  rm -rf "$dir"; mkdir -p "$dir"
  case $1 in
    nginx)
      cat > "$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile $NOFILE;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((MAXN + ROOM)); }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  keepalive_timeout $IDLE_TIMEOUT;
  $(nginx_backends_conf)
  server {
    listen 127.0.0.1:$PROXY_PORT$NGINX_LISTEN;
    $NGINX_CERT
    $NGINX_PROXY
  }
}
CONF
      nginx -c "$dir/nginx.conf" > "$dir/out" 2>&1 & started $!
      ;;
    haproxy)
      cat > "$dir/haproxy.cfg" <<CONF
global
  maxconn $((MAXN + HA_ROOM))
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  maxconn $((MAXN + HA_ROOM))
  timeout connect 5s
  timeout client $IDLE_TIMEOUT
  timeout http-keep-alive $IDLE_TIMEOUT
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$PROXY_PORT$HA_BIND
  default_backend be
$(haproxy_backend_conf)
CONF
      haproxy -f "$dir/haproxy.cfg" > "$dir/access.log" 2>&1 & started $!
      ;;
    gatehouse)
      local plain=$PROXY_PORT tls=""
      if [ -n "$GH_TLS" ]; then
        plain=$(port)
        tls="tls: {listen: \"127.0.0.1:$PROXY_PORT\", cert_file: \"$WORK/cert.pem\", key_file: \"$WORK/key.pem\", http2: $GH_TLS, redirect_http: false}"
      fi
      cat > "$dir/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$plain"
$tls
admin: "127.0.0.1:$(port)"
data_dir: "$dir/data"
$GH_H2C
limits:
  max_connections: $((MAXN + ROOM))
  max_connections_per_ip: $((MAXN + ROOM))
  keepalive_timeout: $IDLE_TIMEOUT
$(bench_app_conf)
CONF
      "$WORK/gatehouse" run -c "$dir/gatehouse.yaml" > "$dir/out" 2>&1 & started $!
      ;;
  esac
  PROXY_PID=$!
  wait_port "$PROXY_PORT" || { echo "$1 did not start:" >&2; tail -5 "$dir/out" "$dir/access.log" >&2 2>/dev/null; exit 1; }
  [ "$1" = gatehouse ] && sleep 1 # first probes mark the upstreams ready
  check_session "$1" "$PROXY_PID"
  return 0
}

# established PORT: ESTABLISHED sockets whose local port is PORT (the
# proxy's ends of its client connections).
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
# upstream_conns: ESTABLISHED sockets to the backends (the proxy's ends).
upstream_conns() { ss -Htn state established "( dport = :$B1 or dport = :$B2 )" | wc -l; }

# field KEY FILE: the value of KEY=... on idleconns' output.
field() { grep -o "\b$1=[^ ]*" "$2" | head -1 | cut -d= -f2; }

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
FAILED=0
SHOWN=
for round in $(seq "$ROUNDS"); do
  k=$(( (round-1) % ${#PROXIES[@]} ))
  order=("${PROXIES[@]:$k}" "${PROXIES[@]:0:$k}")
  for n in "${SIZES[@]}"; do
    for name in "${order[@]}"; do
      start_proxy "$name"
      case " $SHOWN " in *" $name "*) ;; *) show_sessions "$name" "$PROXY_PID"; SHOWN+=" $name" ;; esac
      # A few requests first, so that what the first request sets up
      # (upstream connections, lazy buffers) is in the baseline.
      timeout 60 sh -c "$SELF_REPORT" "$WORK/warm.sid" "$WORK/idleconns" -proto "$PROTO" -addr "127.0.0.1:$PROXY_PORT" -n 16 -c 4 -check 0 -max 0s > "$WORK/warm.out" ||
        { echo "warm-up through $name failed: $(cat "$WORK/warm.out")" >&2; exit 1; }
      check_report idleconns "$WORK/warm.sid"
      sleep 1
      before=$(rss_kb $(tree "$PROXY_PID"))

      rm -f "$WORK/client.sid"
      timeout $((HOLD + 600)) sh -c "$SELF_REPORT" "$WORK/client.sid" "$WORK/idleconns" -proto "$PROTO" -addr "127.0.0.1:$PROXY_PORT" \
        -n "$n" -c "$PARALLEL" -sources "$SOURCES" -check "$CHECK" -timeout 20s -max $((HOLD + 300))s > "$WORK/client.out" 2>&1 &
      tpid=$!
      for _ in $(seq 1200); do # up to 120 s to open them all
        grep -q '^ready' "$WORK/client.out" && break
        kill -0 "$tpid" 2>/dev/null || break
        sleep 0.1
      done
      grep -q '^ready' "$WORK/client.out" || { echo "idleconns against $name never got ready: $(cat "$WORK/client.out")" >&2; exit 1; }
      show=
      case " $SHOWN " in *" idleconns "*) ;; *) show=1; SHOWN+=" idleconns" ;; esac
      check_report idleconns "$WORK/client.sid" $show
      cpid=$(cut -d' ' -f1 "$WORK/client.sid")
      sleep "$HOLD"
      after=$(rss_kb $(tree "$PROXY_PID"))
      est=$(established "$PROXY_PORT")
      ups=$(upstream_conns)

      # Release the client (its own pid, under timeout): it peeks at every
      # connection and sends CHECK more requests.
      kill -USR1 "$cpid" 2>/dev/null || true
      rc=0
      wait "$tpid" || rc=$?
      stop "$PROXY_PID"; forget "$PROXY_PID"

      opened=$(field conns "$WORK/client.out")
      open=$(field open "$WORK/client.out")
      ok=$(field ok "$WORK/client.out")
      asked=$(field requests "$WORK/client.out")
      note=""
      if [ "$rc" != 0 ] || [ "${opened:-0}" != "$n" ] || [ "$est" -lt "$n" ] || [ "${open:-0}" != "$n" ] || [ "${ok:-0}" != "${asked:-x}" ]; then
        note="FAILED (idleconns exit $rc): $(grep -v '^ready\|^alive\|^check' "$WORK/client.out" | tr '\n' ' ')"
        FAILED=1
      fi
      growth=$((after - before))
      per=$(awk -v g="$growth" -v n="$n" 'BEGIN{printf "%.2f", g/n}')
      printf 'idle\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$n" "$name" "$before" "$after" "$est" "$ups" "${open:-0}" "${ok:-0}/${asked:-0}" >> "$RESULTS"
      printf 'round %s n=%-6s %-9s rss %7sKiB -> %7sKiB  %+7.1fMiB  %6sKiB/conn  established %s/%s  upstream %s  still open %s/%s  check %s/%s %s\n' \
        "$round" "$n" "$name" "$before" "$after" "$(awk -v g="$growth" 'BEGIN{print g/1024}')" "$per" \
        "$est" "$n" "$ups" "${open:-0}" "${opened:-0}" "${ok:-0}" "${asked:-0}" "$note"
    done
  done
done

echo
echo "Medians over $ROUNDS rounds (memory: sum of VmRSS over each proxy's processes; lower is better):"
python3 - "$RESULTS" <<'PY'
import sys, statistics as st
runs, keys = {}, []
for line in open(sys.argv[1]):
    _, rnd, n, name, before, after, est, ups, open_, check = line.rstrip("\n").split("\t")
    if n not in keys:
        keys.append(n)
    runs.setdefault((n, name), []).append((int(before), int(after), int(est), int(open_)))
print(f"{'N':>6} {'proxy':<10} {'rss before':>10} {'rss idle N':>10} {'growth':>9} {'KiB/conn':>9} {'ratio':>6} {'established':>11} {'still open':>10}")
for n in keys:
    per = {}
    for name in ("nginx", "haproxy", "gatehouse"):
        r = runs.get((n, name))
        if not r:
            continue  # not in PROXIES
        b, a = st.median(x[0] for x in r), st.median(x[1] for x in r)
        per[name] = st.median((x[1] - x[0]) / int(n) for x in r)
        base = per.get("nginx")
        ratio = per[name] / base if base else float("nan")
        print(f"{n:>6} {name:<10} {b/1024:>9.1f}M {a/1024:>9.1f}M {(a-b)/1024:>8.1f}M {per[name]:>9.2f} {ratio:>6.2f} {min(x[2] for x in r):>11} {min(x[3] for x in r):>10}")
PY
[ "$FAILED" = 0 ] || { echo "some connections failed or were closed: see FAILED above" >&2; exit 1; }
