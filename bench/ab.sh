#!/usr/bin/env bash
# A/B benchmark of two builds of gatehouse, interleaved round by round in
# front of the same two backends, with wrk: whether a change made the hot
# path slower, measured without the noise between separate runs.
#
#   bench/ab.sh REF              # REF (a commit, tag or branch) against the work tree
#   ROUNDS=5 DURATION=6 CONNS="50 256" bench/ab.sh HEAD~3
#   PROTO=h2 CONNS=50 bench/ab.sh HEAD~3   # HTTP/2 over TLS, h2load, 10 streams a client
#   PROTO=https bench/ab.sh HEAD~3         # HTTP/1.1 over TLS, wrk
#   PROTO=handshake CONNS=50 bench/ab.sh HEAD~3  # a TLS handshake a request (Connection: close)
#   B_ENV="GOMAXPROCS=1" bench/ab.sh HEAD        # the same build, B run with these variables
#
# Each run prints requests/s, the CPU gatehouse spent per request (and
# the user-space part of it), and its RSS as the run ends (under its load).
#
# Everything listens on 127.0.0.1; only the processes this script started
# are stopped on exit.
set -euo pipefail
# Built as releases are (.goreleaser.yaml): without cgo.
export CGO_ENABLED=${CGO_ENABLED:-0}

REF=${1:?usage: bench/ab.sh REF}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
CONNS=${CONNS:-"50 256"}
PROTO=${PROTO:-http} # http: wrk over plain HTTP/1.1; https: wrk over TLS; h2: h2load over TLS; handshake: https, Connection: close
STREAMS=${STREAMS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-ab.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  git -C "$ROOT" worktree remove --force "$WORK/a-src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ "$PROTO" != http ]; then
  [ "$PROTO" = h2 ] && { command -v h2load >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null; }; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; return 1
}

cd "$ROOT"
git worktree add --detach "$WORK/a-src" "$REF" >/dev/null 2>&1
(cd "$WORK/a-src" && go build -o "$WORK/gh-a" ./cmd/gatehouse)
go build -o "$WORK/gh-b" ./cmd/gatehouse
go build -o "$WORK/backend" ./bench/backend

B1=$(port); B2=$(port)
"$WORK/backend" -addr "127.0.0.1:$B1" & PIDS+=($!)
"$WORK/backend" -addr "127.0.0.1:$B2" & PIDS+=($!)
wait_port "$B1"; wait_port "$B2"

declare -A PORT PID
for v in a b; do
  PORT[$v]=$(port); admin=$(port); plain=$(port)
  if [ "$PROTO" != http ]; then
    listen=$plain
    tlsconf="tls: {listen: \"127.0.0.1:${PORT[$v]}\", cert_file: \"$WORK/cert.pem\", key_file: \"$WORK/key.pem\", redirect_http: false}"
  else
    listen=${PORT[$v]}; tlsconf=""
  fi
  cat > "$WORK/$v.yaml" <<CONF
listen: "127.0.0.1:$listen"
admin: "127.0.0.1:$admin"
data_dir: "$WORK/$v-data"
$tlsconf
apps:
  bench:
    upstreams: ["127.0.0.1:$B1", "127.0.0.1:$B2"]
    health: {interval: 5s}
CONF
  envs=(); [ "$v" = b ] && read -ra envs <<< "${B_ENV:-}"
  env "${envs[@]}" "$WORK/gh-$v" run -c "$WORK/$v.yaml" > "$WORK/$v.out" 2>&1 & PIDS+=($!)
  PID[$v]=$!
  wait_port "${PORT[$v]}"
done
sleep 1

HZ=$(getconf CLK_TCK)
# user and system ticks, as "user system"
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "A = $REF ($(git rev-parse --short "$REF")), B = work tree${B_ENV:+ with $B_ENV}; $PROTO"
: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  order=(a b); [ $((round % 2)) -eq 0 ] && order=(b a)
  for c in $CONNS; do
    for v in "${order[@]}"; do
      before=$(ticks "${PID[$v]}")
      if [ "$PROTO" = h2 ]; then
        out=$(h2load -t2 -c"$c" -m"$STREAMS" -D"$DURATION" "https://127.0.0.1:${PORT[$v]}/")
        after=$(ticks "${PID[$v]}")
        rps=$(echo "$out" | awk '/^finished in/{gsub(",","",$4); print $4}')
        total=$(echo "$out" | awk '/^requests:/{print $8}')
      else
        scheme=https; hdr=()
        [ "$PROTO" = http ] && scheme=http
        [ "$PROTO" = handshake ] && hdr=(-H "Connection: close")
        out=$(wrk -t2 -c"$c" -d"${DURATION}s" --latency "${hdr[@]}" "$scheme://127.0.0.1:${PORT[$v]}/")
        after=$(ticks "${PID[$v]}")
        rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
        total=$(echo "$out" | awk '/requests in/{print $1}')
      fi
      rss=$(awk '/^VmRSS/{printf "%.1f", $2/1024}' "/proc/${PID[$v]}/status")
      read -r cpu usr < <(awk -v a="$after" -v b="$before" -v hz="$HZ" -v n="$total" 'BEGIN{split(a, x, " "); split(b, y, " ")
        printf "%.1f %.1f\n", (x[1]+x[2]-y[1]-y[2])/hz*1e6/n, (x[1]-y[1])/hz*1e6/n}')
      printf 'round %s c=%-3s %s %9s req/s  cpu/req %6sus (user %5sus)  rss %5s MiB\n' "$round" "$c" "$v" "$rps" "$cpu" "$usr" "$rss"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$v" "$rps" "$cpu" "$rss" "$usr" >> "$WORK/results"
    done
  done
done
python3 - "$WORK/results" <<'PY'
import sys, statistics as st
r = {}
for line in open(sys.argv[1]):
    c, v, rps, cpu, rss, usr = line.split()
    r.setdefault((c, v), []).append((float(rps), float(cpu), float(rss), float(usr)))
print("\nmedians: c, A req/s, B req/s, B/A, A cpu/req, B cpu/req, B/A, A rss, B rss (MiB), A user, B user, B/A")
for c in sorted({k[0] for k in r}, key=int):
    a, b = r[(c, "a")], r[(c, "b")]
    ar, br = st.median(x[0] for x in a), st.median(x[0] for x in b)
    ac, bc = st.median(x[1] for x in a), st.median(x[1] for x in b)
    am, bm = st.median(x[2] for x in a), st.median(x[2] for x in b)
    au, bu = st.median(x[3] for x in a), st.median(x[3] for x in b)
    print(f"c={c:<4} {ar:9.0f} {br:9.0f} {br/ar:5.2f}   {ac:6.1f}us {bc:6.1f}us {bc/ac:5.2f}   {am:5.1f} {bm:5.1f}   {au:5.1f}us {bu:5.1f}us {bu/au:5.2f}")
PY
