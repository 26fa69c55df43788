# Helpers shared by the bmv2 scripts; sourced, not run.
# shellcheck shell=bash

# Exit statuses: 0 done, 1 failed, 2 bad usage, 69 a tool is missing
# (EX_UNAVAILABLE), so that callers can tell "not installed" from "broken".
readonly EX_USAGE=2
readonly EX_UNAVAILABLE=69

# Where the p4c and bmv2 install instructions live (used by the scripts).
# shellcheck disable=SC2034
readonly P4C_INSTALL="https://github.com/p4lang/p4c#installing-packaged-versions-of-p4c"
# shellcheck disable=SC2034
readonly BMV2_INSTALL="https://github.com/p4lang/behavioral-model/tree/main/targets/simple_switch_grpc#dependencies-and-build-steps"

# The calling script's name, for messages (no external command: the
# absence checks must work with an empty PATH).
SCRIPT="${0##*/}"

die() {
	printf '%s: %s\n' "$SCRIPT" "$*" >&2
	exit 1
}

usage_error() {
	printf '%s: %s (see --help)\n' "$SCRIPT" "$*" >&2
	exit "$EX_USAGE"
}

# require_tool NAME PROGRAM HOW: exits with one line when PROGRAM is not
# runnable. Uses only shell builtins.
require_tool() {
	local name=$1 program=$2 how=$3
	if ! command -v "$program" >/dev/null 2>&1; then
		local where="on PATH"
		[[ $program == "$name" ]] || where="on PATH as '$program'"
		[[ $program != */* ]] || where="at $program"
		printf '%s: %s not found %s; %s\n' "$SCRIPT" "$name" "$where" "$how" >&2
		exit "$EX_UNAVAILABLE"
	fi
}

# A process is ours if it is alive and started at the recorded time
# (field 22 of /proc/PID/stat), so a recycled pid is never signalled.
proc_start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# Fields after the command name, which may hold spaces and parentheses.
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split on purpose
	set -- $stat
	# $1 is field 3 (state); field 22 is $20.
	printf '%s\n' "${20}"
}
