#!/usr/bin/env bash
# Measures what clients see when gatehouse itself is replaced: a plain
# stop-and-start of gatehouse (the figure to beat: every app instance
# stops and starts cold, and nothing listens in between) against
# `gatehouse upgrade` run UPGRADES times in a row (the sockets and the
# running instances go to the new process), each under the same load.
#
#   bench/upgrade.sh            # from anywhere in the repository
#
# It builds gatehouse, the demo app (examples/demo) and bench/cmd/loadgen
# into a temp dir, runs gatehouse on two free 127.0.0.1 ports with 2 demo
# instances, and sends traffic only to 127.0.0.1. Everything it starts is
# stopped on exit (it kills only the processes it started, found by the
# temp dir's path). Tunables (environment): CONC (concurrent keep-alive
# clients, 32), QUIET (seconds of quiet load before each phase, 5),
# POST_RATIO (0.3), UPGRADES (3); KEEP=1 keeps the temp dir.
set -euo pipefail

CONC=${CONC:-32}
QUIET=${QUIET:-5}
POST_RATIO=${POST_RATIO:-0.3}
UPGRADES=${UPGRADES:-3}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-upgrade-bench.XXXXXX")
lg_pid=""
# shellcheck source=bench/demo_lib.sh
. "$root/bench/demo_lib.sh"

# ours lists the pids of the processes this run started from $work
# (gatehouse, its successors, the shims and the demo apps).
ours() { pgrep -f -- "$work/" || true; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_loadgen
	# The serving gatehouse is not necessarily this shell's child after an
	# upgrade: stop whichever runs from $work, drain-first, then the rest.
	for pid in $(pgrep -f -- "$work/gatehouse run" || true); do kill -TERM "$pid" 2>/dev/null || true; done
	for _ in $(seq 1 150); do [[ -z $(pgrep -f -- "$work/gatehouse run" || true) ]] && break; sleep 0.1; done
	for pid in $(ours); do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	remove_work
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

build_demo

listen="127.0.0.1:$(free_port)"
admin="127.0.0.1:$(free_port)"
demo_config "$listen" "$admin"

start_gatehouse() {
	"$work/gatehouse" run -c "$work/gatehouse.yaml" >>"$work/gatehouse.out" 2>>"$work/gatehouse.err" &
}

wait_ready() {
	local ready=0
	for _ in $(seq 1 150); do
		ready=$("$work/gatehouse" status --admin "$admin" --json 2>/dev/null | grep -c '"state": "ready"' || true)
		[[ $ready -ge 2 ]] && return 0
		sleep 0.1
	done
	log "demo instances not ready"
	cat "$work/gatehouse.err" >&2
	return 1
}

app_pids() { "$work/gatehouse" status --admin "$admin" --json | grep '"pid"' | tr -dc '0-9\n' | sort | tr '\n' ' '; }

start_gatehouse
wait_ready
log "gatehouse listening on $listen, admin on $admin; app pids: $(app_pids)"

echo quiet >"$work/phase"
"$work/loadgen" -url "http://$listen/" -c "$CONC" -d 0 -post-ratio "$POST_RATIO" -fail-pause 10ms \
	-phase-file "$work/phase" >"$work/loadgen.out" 2>&1 &
lg_pid=$!
log "load: $CONC keep-alive clients, ${POST_RATIO} POST; quiet for ${QUIET}s"
sleep "$QUIET"

# Phase 1: stop and start gatehouse, the way a binary update is done
# without an upgrade path.
before_restart=$(app_pids)
echo restart >"$work/phase"
t0=$(date +%s.%N)
gh=$(pgrep -f -- "$work/gatehouse run")
log "stop-and-start: SIGTERM to gatehouse $gh, then gatehouse run again"
kill -TERM "$gh"
while kill -0 "$gh" 2>/dev/null; do sleep 0.02; done
start_gatehouse
wait_ready
t1=$(date +%s.%N)
restart_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
after_restart=$(app_pids)
log "stop-and-start took ${restart_secs}s; app pids $before_restart -> $after_restart"
echo settle >"$work/phase"
sleep "$QUIET"

# Phase 2: the upgrades.
before_upgrade=$(app_pids)
echo upgrade >"$work/phase"
t0=$(date +%s.%N)
for i in $(seq 1 "$UPGRADES"); do
	log "gatehouse upgrade ($i of $UPGRADES)"
	"$work/gatehouse" upgrade --admin "$admin" | sed 's/^/    /' >&2
	wait_ready
done
t1=$(date +%s.%N)
upgrade_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
after_upgrade=$(app_pids)
sleep 1
echo after >"$work/phase"
sleep 2

kill -INT "$lg_pid"
wait "$lg_pid" || true
lg_pid=""

print_loadgen "$CONC clients; stop-and-start (${restart_secs}s) vs $UPGRADES upgrades (${upgrade_secs}s)"
awk '/^phase=(quiet|restart|upgrade) / {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	ph[v["phase"]] = sprintf("%s failed of %s requests, p99 %s", v["failed"], v["requests"], v["p99"])
} END { printf "RESULT stop-and-start: %s | upgrade x'"$UPGRADES"': %s | quiet: %s\n", ph["restart"], ph["upgrade"], ph["quiet"] }' "$work/loadgen.out"
echo "app pids: stop-and-start $before_restart -> $after_restart (cold start); upgrades $before_upgrade -> $after_upgrade"
echo "upgrade events:"
grep -E '"type":"(upgrade_[a-z]+|adopt)"' "$work/data/events.log" | sed -E 's/.*"type":"([^"]*)".*"detail":"([^"]*)".*/    \1: \2/' || true
