#!/usr/bin/env bash
# Dashboard cost: what one open dashboard adds to gatehouse's CPU under
# load. gatehouse (access log on, as in bench/proxies.sh) proxies to two Go
# backends while wrk sends keep-alive requests; every round runs the same
# load twice, once with no browser and once with headless Chromium showing
# the dashboard (its live stream pushing an update each second), in
# alternating order. gatehouse's CPU time per request is compared between
# the two; on a machine where the browser, wrk, the backends and gatehouse
# share the cores that difference also holds the browser's competition, so
# the script measures the dashboard's own share directly too: a CPU
# profile of gatehouse during each run with the browser, and the part of
# its samples in the dashboard's code (the page stream and its rendering,
# package admin's dashboard, svgchart, and the history it charts, whose
# Observe runs on every request).
#
#   bench/dashboard.sh                    # 3 rounds x 10 s at c=50
#   ROUNDS=5 DURATION=15 CONNS=256 WINDOW=1h bench/dashboard.sh
#
# Fairness as in bench/proxies.sh (bench/lib.sh): every process runs in
# this script's session, in the foreground; only the PIDs started here are
# stopped. Everything listens on 127.0.0.1.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
WINDOW=${WINDOW:-5m}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-dash.XXXXXX)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

install_missing wrk:wrk
CHROMIUM=${GATEHOUSE_CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
  # Debian's /usr/bin/chromium is a wrapper script; run the browser itself.
  for c in /usr/lib/chromium/chromium chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then CHROMIUM=$(command -v "$c"); break; fi
  done
fi
[ -n "$CHROMIUM" ] || { echo "no Chromium (apt-get install chromium, or set GATEHOUSE_CHROMIUM)" >&2; exit 2; }

cd "$ROOT"
go build -o "$WORK/gatehouse" ./cmd/gatehouse
go build -o "$WORK/backend" ./bench/backend
start_backends
GH=$(port); ADMIN=$(port)
cat > "$WORK/gatehouse.yaml" <<CONF
listen: "127.0.0.1:$GH"
admin: "127.0.0.1:$ADMIN"
data_dir: "$WORK/data"
$(bench_app_conf)
CONF
"$WORK/gatehouse" run -c "$WORK/gatehouse.yaml" > "$WORK/gatehouse.out" 2>&1 & started $!
GH_PID=$!
wait_port "$GH"; wait_port "$ADMIN"
sleep 1 # first probes mark the upstreams ready
check_session gatehouse "$GH_PID"
show_sessions gatehouse "$GH_PID"

ticks() { awk '{print $14+$15}' "/proc/$GH_PID/stat"; }
HZ=$(getconf CLK_TCK)
# streams: the admin listener's established connections (the browser's
# page stream among them).
streams() { ss -Htn state established "( sport = :$ADMIN )" | wc -l; }

# run MODE: one load run; prints MODE requests ticks streams.
run() {
  local browser="" t0 t1 reqs s=0
  if [ "$1" = with ]; then
    "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$WORK/chrome" \
      --window-size=1280,2000 "http://127.0.0.1:$ADMIN/?window=$WINDOW" > "$WORK/chrome.out" 2>&1 & started $!
    browser=$!
    for _ in $(seq 100); do [ "$(streams)" -gt 0 ] && break; sleep 0.1; done
    sleep 3 # the page loaded and its stream is open
    check_session chromium "$browser"
  fi
  local prof=""
  t0=$(ticks)
  if [ -n "$browser" ]; then
    curl -s -o "$WORK/cpu-$r.pprof" "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$((DURATION - 2))" &
    prof=$!
  fi
  timeout $((DURATION + 30)) sh -c "$SELF_REPORT" "$WORK/wrk.sid" wrk -t2 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$GH/" > "$WORK/wrk.out"
  t1=$(ticks)
  [ -z "$prof" ] || wait "$prof"
  check_report wrk "$WORK/wrk.sid"
  [ -z "$browser" ] || s=$(streams)
  reqs=$(awk '/requests in/{print $1}' "$WORK/wrk.out")
  if [ -n "$browser" ]; then stop "$browser"; forget "$browser"; rm -rf "$WORK/chrome"; fi
  share=-
  if [ -n "$browser" ]; then
    share=$(go tool pprof -top -focus 'admin\.\(\*dashboard\)|internal/history\.|internal/svgchart\.' "$WORK/cpu-$r.pprof" 2>/dev/null |
      sed -n 's/.*Showing nodes accounting for [^,]*, \([0-9.]*\)% of .*/\1/p' | head -1)
  fi
  echo "$1 $reqs $((t1 - t0)) $s ${share:-0}"
}

: > "$WORK/results"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="without with"; else order="with without"; fi
  for m in $order; do
    line=$(run "$m")
    echo "$line" >> "$WORK/results"
    read -r mode reqs t s share <<<"$line"
    printf 'round %d %-7s browser  %8d requests  gatehouse cpu %6.2fs  %6.1f us/req  %5.1f%% of a core%s\n' "$r" "$mode" "$reqs" \
      "$(echo "$t / $HZ" | bc -l)" "$(echo "$t / $HZ * 1000000 / $reqs" | bc -l)" "$(echo "$t / $HZ * 100 / $DURATION" | bc -l)" \
      "$([ "$mode" = with ] && echo "  (admin connections open: $s; dashboard's share of gatehouse's CPU: $share%)")"
  done
done
python3 - "$WORK/results" "$HZ" "$WORK/gatehouse.out" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
hz = float(sys.argv[2])
per = {m: [int(t) / hz * 1e6 / int(r) for mm, r, t, _, _ in rows if mm == m] for m in ("without", "with")}
a, b = statistics.median(per["without"]), statistics.median(per["with"])
share = statistics.median(float(x[4]) for x in rows if x[0] == "with")
print(f"median gatehouse CPU per request: without a browser {a:.1f} us, with the dashboard open {b:.1f} us: {100 * (b - a) / a:+.1f}%")
print(f"median share of gatehouse's CPU in the dashboard's code (profile, with the browser): {share:.1f}%")
PY
