# Process helpers for the proxy benchmarks (bench/proxies.sh, bench/idle.sh),
# sourced, not run. They own the fairness rules:
#
# - Every server and client stays in the script's own session. With kernel
#   autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled = 1) the
#   CPU is shared between sessions first: a daemon (setsid) would get one
#   share of its own against wrk and the backends together, and serve
#   20-40% fewer requests than the same server in the foreground.
#   check_session fails the run when a process has left the session, and
#   show_sessions prints the evidence (session, process group, autogroup).
# - Processes are stopped only by the PIDs the script started (and their
#   descendants, found from those PIDs), never by name.
#
# The sourcing script sets WORK (its scratch directory) before sourcing,
# and records what it starts with started PID: on exit, everything
# started is stopped and WORK removed.

# gatehouse is built as its releases are (.goreleaser.yaml): without cgo,
# so Go's own resolver, and no libc mapped into the process (1.5 MiB of
# its RSS).
export CGO_ENABLED=${CGO_ENABLED:-0}

SCRIPT_SID=$(ps -o sid= -p $$ | tr -d ' ')
PIDS=()

started() { PIDS+=("$1"); }

# descendants PID...: every process below the PIDs (children, grandchildren).
descendants() {
  local p c
  for p in "$@"; do
    for c in $(pgrep -P "$p" || true); do
      echo "$c"
      descendants "$c"
    done
  done
}

# tree PID...: the PIDs and their descendants, one per line.
tree() { printf '%s\n' "$@"; descendants "$@"; }

# stat_field PID N: field N of /proc/PID/stat (1-based, as in proc(5));
# empty when the process is gone. comm (field 2) may hold spaces, so the
# fields are counted after its closing parenthesis.
stat_field() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  awk -v n="$(($2 - 2))" '{print $n}' <<<"$s"
}

autogroup_of() { sed 's/ nice.*//' "/proc/$1/autogroup" 2>/dev/null || echo -; }

# check_session LABEL PID...: fail the run, loudly, when one of the PIDs or
# their descendants is not in the script's session.
check_session() {
  local label=$1 p s
  shift
  for p in $(tree "$@"); do
    s=$(ps -o sid= -p "$p" 2>/dev/null | tr -d ' ') || true
    [ -n "$s" ] || continue # already gone
    if [ "$s" != "$SCRIPT_SID" ]; then
      echo "UNFAIR: $label (pid $p, $(ps -o comm= -p "$p")) runs in session $s, not in this script's session $SCRIPT_SID:" \
        "with autogroup scheduling it would get a CPU share of its own. Run it in the foreground (no daemon, no setsid)." >&2
      exit 3
    fi
  done
}

# show_sessions LABEL PID...: one line per process (the PIDs and their
# descendants): pid, parent, session, process group, autogroup, command.
show_sessions() {
  local label=$1 pid ppid sid pgid comm
  shift
  # ps fails when every process has exited already: nothing to show.
  { ps -o pid=,ppid=,sid=,pgid=,comm= -p "$(tree "$@" | paste -sd,)" || true; } |
    while read -r pid ppid sid pgid comm; do
      printf 'session %-9s pid %-7s ppid %-7s sid %-7s pgid %-7s %-18s %s\n' \
        "$label" "$pid" "$ppid" "$sid" "$pgid" "$(autogroup_of "$pid")" "$comm"
    done
}

# A client runs too briefly to be looked at from outside for sure, so it
# reports on itself: run it as
#   sh -c "$SELF_REPORT" FILE COMMAND ARGS...
# and the shell writes its pid, parent, session, process group and autogroup to
# FILE, then becomes the client (exec: same pid, same session).
# shellcheck disable=SC2016 # expanded by that sh, not here
SELF_REPORT='echo "$$ $(ps -o ppid= -p $$) $(ps -o sid= -p $$) $(ps -o pgid= -p $$) $(sed "s/ nice.*//" /proc/$$/autogroup 2>/dev/null || echo -)" > "$0"; exec "$@"'

# check_report LABEL FILE [show]: fail the run, loudly, when the client
# that wrote FILE (see SELF_REPORT) was not in the script's session; with
# show, print its line as show_sessions does.
check_report() {
  local pid ppid sid pgid ag
  read -r pid ppid sid pgid ag < "$2" || { echo "UNFAIR: $1 did not report its session" >&2; exit 3; }
  if [ "$sid" != "$SCRIPT_SID" ]; then
    echo "UNFAIR: $1 (pid $pid) ran in session $sid, not in this script's session $SCRIPT_SID" >&2
    exit 3
  fi
  [ -z "${3:-}" ] || printf 'session %-9s pid %-7s ppid %-7s sid %-7s pgid %-7s %-18s %s\n' \
    "$1" "$pid" "$ppid" "$sid" "$pgid" "$ag" "$1"
}

# rss_kb PID...: the sum of VmRSS (KiB) of the PIDs (not their descendants;
# pass tree's output for a process tree). Pages that processes share (nginx
# master and workers) count once per process.
rss_kb() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null) || true
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# stop PID...: SIGTERM to the PIDs, up to 10 s for them and their
# descendants to exit, then SIGKILL to whichever of those is still the
# same process (same start time: a PID reused meanwhile is left alone).
# nginx's workers exit with their master; the SIGKILL is the fallback
# that keeps a wedged one from outliving the script.
stop() {
  local all p left
  declare -A start
  all=$(tree "$@")
  for p in $all; do start[$p]=$(stat_field "$p" 22); done
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    left=0
    for p in $all; do
      case $(stat_field "$p" 3) in '' | Z) ;; *) left=1 ;; esac
    done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for p in $all; do
    case $(stat_field "$p" 3) in '' | Z) continue ;; esac
    if [ "$(stat_field "$p" 22)" = "${start[$p]}" ]; then
      echo "pid $p did not exit on SIGTERM within 10 s: SIGKILL" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# stop_all: stop everything recorded with started.
stop_all() {
  local live=() p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && [ -e "/proc/$p" ] && live+=("$p")
  done
  [ ${#live[@]} -eq 0 ] || stop "${live[@]}"
  PIDS=()
}

# forget PID...: drop PIDs from the record (after stop).
forget() {
  local keep=() p q drop
  for p in "${PIDS[@]:-}"; do
    drop=0
    for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
    [ "$drop" = 1 ] || keep+=("$p")
  done
  PIDS=("${keep[@]:-}")
}

# port: a free port below the ephemeral range, which tens of thousands of
# client and upstream connections use up; a listening port picked from it
# could be taken by one of them before the server binds it.
port() {
  python3 - <<'PY'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    p = random.randrange(10000, max(lo, 10001))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

# start_backends: two bench/backend servers ($WORK/backend) on free ports,
# recorded with started; sets B1 and B2 (ports) and B1_PID and B2_PID, and
# returns once both listen.
start_backends() {
  B1=$(port); B2=$(port)
  "$WORK/backend" -addr "127.0.0.1:$B1" & started $!
  B1_PID=$!
  "$WORK/backend" -addr "127.0.0.1:$B2" & started $!
  B2_PID=$!
  wait_port "$B1"; wait_port "$B2"
}

# bench_cert DIR: DIR/cert.pem and DIR/key.pem, one ECDSA P-256
# certificate for 127.0.0.1, self-signed (the load tools do not verify
# it), that every proxy serves.
bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# bench_app_conf: the apps section of a gatehouse config that proxies to
# the two backends of start_backends.
bench_app_conf() {
  cat <<CONF
apps:
  bench:
    upstreams: ["127.0.0.1:$B1", "127.0.0.1:$B2"]
    health: {interval: 5s}
CONF
}

# nginx_backends_conf: the upstream "backends" of an nginx http block,
# the two backends of start_backends with connections kept alive, and
# NGINX_PROXY, the location that proxies to it, for a server block.
nginx_backends_conf() {
  echo "upstream backends { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 256; }"
}
NGINX_PROXY='location / { proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection ""; }'

# haproxy_backend_conf: the backend section of an HAProxy config that
# balances over the two backends of start_backends.
haproxy_backend_conf() {
  cat <<CONF
backend be
  balance leastconn
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
CONF
}

# install_missing COMMAND:PACKAGE...: install from Debian each PACKAGE
# whose COMMAND is missing; INSTALLED says whether it installed any. (No
# status for that: under set -e a function tested by if or || would run
# with errexit off, and a failed apt-get would go unnoticed.)
install_missing() {
  local need=() pair
  INSTALLED=
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  INSTALLED=1
  echo "installing ${need[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# install_peers [COMMAND:PACKAGE...]: install nginx and HAProxy, and each
# PACKAGE whose COMMAND is missing, from Debian.
install_peers() {
  install_missing nginx:nginx-light haproxy:haproxy "$@"
  if [ -n "$INSTALLED" ]; then
    # Debian starts the services it just installed; the benchmark runs its
    # own, so stop those (by their pid files: nobody else's).
    local f
    for f in /run/nginx.pid /run/haproxy.pid; do
      [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
  fi
}

# start_nginx: nginx in the foreground of this script's session, every
# worker the machine has, no access log, keep-alive clients never cut,
# its temporary files under $WORK/nginx, and the http block's own lines
# read from standard input; sets NGINX_PID.
start_nginx() {
  mkdir -p "$WORK/nginx"
  {
    cat <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
CONF
    cat
    echo "}"
  } >"$WORK/nginx/nginx.conf"
  nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" & started $!
  NGINX_PID=$!
}

# cpu_ticks PID...: user+system clock ticks of the PIDs and their
# descendants, so far.
cpu_ticks() {
  local t=0 p
  for p in $(tree "$@"); do
    t=$((t + $(stat_field "$p" 14 || echo 0) + $(stat_field "$p" 15 || echo 0)))
  done
  echo "$t"
}

# wrk_cpu PID DURATION CONNS URL [WRK ARGS...]: wrk at URL for DURATION
# seconds over CONNS connections; prints the requests a second and the
# CPU time a request (µs) the PIDs and their descendants spent.
wrk_cpu() {
  local pid=$1 dur=$2 conns=$3 url=$4 before after out reqs
  shift 4
  before=$(cpu_ticks "$pid")
  out=$(wrk -t 2 -c "$conns" -d "${dur}s" "$@" "$url")
  after=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$reqs" -v d="$dur" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f %.1f\n", r / d, t / hz * 1e6 / r }'
}

cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
