#!/usr/bin/env bash
# Stops a simple_switch_grpc that start.sh started and deletes the veth
# pairs start.sh created. Logs stay in the run directory.
set -euo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() {
	cat <<EOF
Usage: $SCRIPT [--run-dir DIR | --device-id N] [--timeout SECONDS] [--quiet]

Stops the simple_switch_grpc that start.sh recorded in DIR (SIGTERM, then
SIGKILL after the timeout) and deletes the veth pairs start.sh created.

  --run-dir DIR     as given to start.sh (default: /tmp/beamer-bmv2-<device id>)
  --device-id N     picks the default run directory (default: 1)
  --timeout SECS    wait this long after SIGTERM (default: 5)
  --quiet           print nothing when there is nothing to do

Exit status: 0 stopped or nothing to stop, 1 could not, 2 bad usage.
EOF
}

run_dir=
device_id=1
timeout=5
quiet=
while (($#)); do
	case $1 in
	--run-dir) (($# >= 2)) || usage_error "--run-dir needs a directory"; run_dir=$2; shift 2 ;;
	--device-id) (($# >= 2)) || usage_error "--device-id needs a number"; device_id=$2; shift 2 ;;
	--timeout) (($# >= 2)) || usage_error "--timeout needs seconds"; timeout=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
[[ $timeout =~ ^[0-9]+$ ]] || usage_error "--timeout $timeout: not a number"
run_dir=${run_dir:-/tmp/beamer-bmv2-$device_id}
pid_file=$run_dir/simple_switch_grpc.pid
veth_file=$run_dir/veths

say() { [[ -n $quiet ]] || printf '%s\n' "$*"; }

did=
if [[ -f $pid_file ]]; then
	read -r pid start <"$pid_file" || true
	if [[ -n ${pid:-} && -n ${start:-} && "$(proc_start_time "$pid" || true)" == "$start" ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + timeout))
		while [[ "$(proc_start_time "$pid" || true)" == "$start" ]]; do
			if ((SECONDS >= deadline)); then
				say "simple_switch_grpc (pid $pid) ignored SIGTERM for ${timeout}s; killing it"
				kill -KILL "$pid" 2>/dev/null || true
				sleep 0.2
				[[ "$(proc_start_time "$pid" || true)" != "$start" ]] || die "cannot stop pid $pid"
				break
			fi
			sleep 0.1
		done
		say "stopped simple_switch_grpc (pid $pid)"
	else
		say "simple_switch_grpc (pid ${pid:-?}) was not running"
	fi
	rm -f "$pid_file"
	did=1
fi

if [[ -s $veth_file ]]; then
	require_tool ip ip "install iproute2 to delete the veths listed in $veth_file"
	left=()
	while read -r ifc; do
		[[ -n $ifc ]] || continue
		# Deleting one end deletes the pair; the pair is gone already when
		# its peer's namespace was deleted.
		if ip link show dev "$ifc" >/dev/null 2>&1; then
			if ip link del dev "$ifc"; then
				say "deleted veth $ifc"
			else
				left+=("$ifc")
			fi
		fi
	done <"$veth_file"
	if ((${#left[@]})); then
		printf '%s\n' "${left[@]}" >"$veth_file"
		die "could not delete ${left[*]} (still listed in $veth_file)"
	fi
	did=1
fi
rm -f "$veth_file"

[[ -n $did ]] || say "nothing to stop in $run_dir"
