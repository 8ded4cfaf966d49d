#!/usr/bin/env bash
# Measures what clients see during `gatehouse reload`: failed requests and
# p99 latency while three rolling reloads run, against a quiet period with
# the same load.
#
#   bench/reload.sh            # from anywhere in the repository
#
# It builds gatehouse, the demo app (examples/demo) and bench/cmd/loadgen
# into a temp dir, runs gatehouse on 127.0.0.1 with 2 demo instances, and
# sends traffic only to 127.0.0.1. Everything it starts is stopped on exit.
# Tunables (environment): CONC (concurrent clients, 8), QUIET (seconds of
# quiet load, 10), POST_RATIO (0.3), RELOADS (3); KEEP=1 keeps the temp dir
# (logs, access.log, events.log) for a look afterwards.
set -euo pipefail

CONC=${CONC:-8}
QUIET=${QUIET:-10}
POST_RATIO=${POST_RATIO:-0.3}
RELOADS=${RELOADS:-3}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-reload-bench.XXXXXX")
gh_pid=""
lg_pid=""
# shellcheck source=bench/demo_lib.sh
. "$root/bench/demo_lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_loadgen
	if [[ -n $gh_pid ]] && kill -0 "$gh_pid" 2>/dev/null; then
		kill -TERM "$gh_pid" 2>/dev/null || true
		# gatehouse drains and stops its instances; give it a bound.
		for _ in $(seq 1 100); do kill -0 "$gh_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$gh_pid" 2>/dev/null || true
		wait "$gh_pid" 2>/dev/null || true
	fi
	remove_work
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_demo

demo_config "127.0.0.1:0" "127.0.0.1:0"

"$work/gatehouse" run -c "$work/gatehouse.yaml" >"$work/gatehouse.out" 2>"$work/gatehouse.err" &
gh_pid=$!

# gatehouse picks free loopback ports and logs them.
listen="" admin=""
for _ in $(seq 1 100); do
	line=$(grep -m1 'gatehouse running' "$work/gatehouse.err" || true)
	if [[ -n $line ]]; then
		listen=$(sed -E 's/.* listen=([^ ]+).*/\1/' <<<"$line")
		admin=$(sed -E 's/.* admin=([^ ]+).*/\1/' <<<"$line")
		break
	fi
	kill -0 "$gh_pid" 2>/dev/null || { cat "$work/gatehouse.err" >&2; exit 1; }
	sleep 0.1
done
[[ $listen == 127.0.0.1:* && $admin == 127.0.0.1:* ]] || { log "gatehouse did not start on loopback"; cat "$work/gatehouse.err" >&2; exit 1; }
log "gatehouse listening on $listen, admin on $admin"

ready=0
for _ in $(seq 1 100); do
	ready=$("$work/gatehouse" status --admin "$admin" --json | grep -c '"state": "ready"' || true)
	[[ $ready -ge 2 ]] && break
	sleep 0.2
done
[[ $ready -ge 2 ]] || { log "demo instances not ready"; "$work/gatehouse" status --admin "$admin" >&2; exit 1; }

echo quiet >"$work/phase"
"$work/loadgen" -url "http://$listen/" -c "$CONC" -d 0 -post-ratio "$POST_RATIO" \
	-phase-file "$work/phase" >"$work/loadgen.out" 2>&1 &
lg_pid=$!
log "load: $CONC clients, ${POST_RATIO} POST; quiet for ${QUIET}s"
sleep "$QUIET"

echo reload >"$work/phase"
sleep 0.2
reload_start=$(date +%s.%N)
for i in $(seq 1 "$RELOADS"); do
	log "gatehouse reload demo ($i of $RELOADS)"
	"$work/gatehouse" reload demo --admin "$admin" | sed 's/^/    /' >&2
done
reload_end=$(date +%s.%N)
sleep 0.2
echo after >"$work/phase"
sleep 3

kill -INT "$lg_pid"
wait "$lg_pid" || true
lg_pid=""

five_xx=$(grep -c '"status":5' "$work/data/access.log" || true)
pids=$("$work/gatehouse" status --admin "$admin" --json | grep -c '"pid"' || true)
reload_secs=$(awk -v a="$reload_start" -v b="$reload_end" 'BEGIN { printf "%.1f", b - a }')

print_loadgen "$RELOADS reloads of 2 demo instances under $CONC clients (${reload_secs}s of reloading)"
echo "gatehouse access.log responses with status 5xx: $five_xx"
# The headline: failures and p99 while reloading vs quiet.
awk '/^phase=(quiet|reload) / {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	ph[v["phase"]] = sprintf("%s failed of %s requests, p99 %s", v["failed"], v["requests"], v["p99"])
} END { printf "RESULT reload: %s | quiet: %s\n", ph["reload"], ph["quiet"] }' "$work/loadgen.out"
echo "instances after the reloads: $pids"
echo "reload events:"
grep '"type":"reload"' "$work/data/events.log" | sed -E 's/.*"detail":"([^"]*)".*/    \1/' || true
