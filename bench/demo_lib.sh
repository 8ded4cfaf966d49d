# Helpers for the benchmarks that run gatehouse with the demo app
# (examples/demo) under bench/cmd/loadgen and measure what its clients see
# during an operation (bench/reload.sh, bench/upgrade.sh); sourced, not
# run. The sourcing script sets work (its scratch directory) and root (the
# repository) before sourcing, and lg_pid when it starts loadgen.

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build_demo: gatehouse, the demo app and loadgen, built into $work.
build_demo() {
	log "building gatehouse, demo and loadgen in $work"
	(cd "$root" && CGO_ENABLED=0 go build -o "$work/gatehouse" ./cmd/gatehouse &&
		go build -o "$work/demo" ./examples/demo &&
		go build -o "$work/loadgen" ./bench/cmd/loadgen)
}

# demo_config LISTEN ADMIN: $work/gatehouse.yaml, 2 demo instances.
demo_config() {
	cat >"$work/gatehouse.yaml" <<CONF
listen: "$1"
admin: "$2"
data_dir: "$work/data"
apps:
  demo:
    command: ["$work/demo"]
    instances: 2
    health: {path: /healthz, interval: 1s, timeout: 1s}
    start_timeout: 20s
    stop_timeout: 15s
CONF
}

# stop_loadgen: on exit, loadgen stopped if it still runs.
stop_loadgen() {
	if [[ -n $lg_pid ]] && kill -0 "$lg_pid" 2>/dev/null; then
		kill "$lg_pid" 2>/dev/null || true
		wait "$lg_pid" 2>/dev/null || true
	fi
}

# remove_work: on exit, $work removed, or kept (and named) with KEEP=1.
remove_work() {
	if [[ -n ${KEEP:-} ]]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}

# print_loadgen HEADLINE: loadgen's per-second lines, then its summary
# under HEADLINE.
print_loadgen() {
	echo
	echo "== per second (requests, failures, latency) =="
	grep '^t=' "$work/loadgen.out" || true
	echo
	echo "== summary: $1 =="
	grep -v '^t=' "$work/loadgen.out"
}
