#!/usr/bin/env bash
# Starts bmv2's simple_switch_grpc as a Beamer mux: no program loaded (the
# controller pushes the bmv2 JSON and the P4Info over P4Runtime), ports on
# given interfaces or on veth pairs this script creates, CPU port off.
set -euo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() {
	cat <<EOF
Usage: $SCRIPT [options] [-- simple_switch_grpc target options]

Starts simple_switch_grpc in the background and waits for its P4Runtime server.

  --device-id N     P4Runtime device id (default: 1)
  --grpc ADDR       P4Runtime server address (default: 127.0.0.1:9559)
  --iface N@IFACE   attach the existing interface IFACE as port N (repeat)
  --veth N@IFACE:PEER[@NETNS]
                    create the veth pair IFACE/PEER, attach IFACE as port N and
                    move PEER into the network namespace NETNS (repeat); both
                    ends come up with IPv6 off (no IPv6 chatter reaches the
                    mux) and checksum offloads, TSO, GSO and GRO off, which
                    bmv2 needs to forward TCP
  --mtu BYTES       MTU of the veths created (default: the kernel's, 1500)
  --log-level L     trace, debug, info, warn, error or off (default: info)
  --log-file FILE   bmv2's log, flushed line by line; bmv2 appends .txt to the
                    name it is given, so FILE ends in .txt and bmv2 gets FILE
                    without it (default: RUN_DIR/bmv2.log.txt; none with
                    --log-level off)
  --cpu-port N      enable P4Runtime packet-in/out on port N (default: off)
  --json FILE       load this bmv2 JSON at start (default: none, --no-p4)
  --run-dir DIR     pid file, created veths and logs (default:
                    /tmp/beamer-bmv2-<device id>); stop.sh takes the same
  --wait SECONDS    how long to wait for the P4Runtime server (default: 20)

Environment: SIMPLE_SWITCH_GRPC, the binary to run (default: simple_switch_grpc).
Exit status: 0 running, 1 failed (nothing left behind), 2 bad usage,
69 a tool is missing (simple_switch_grpc; ip and ethtool with --veth).
EOF
}

device_id=1
grpc=127.0.0.1:9559
ifaces=()
veths=()
mtu=
log_level=info
log_file=
cpu_port=
json=
run_dir=
wait_secs=20
extra=()
need() { (($# >= 2)) || usage_error "$1 needs a value"; }
while (($#)); do
	case $1 in
	--device-id) need "$@"; device_id=$2; shift 2 ;;
	--grpc) need "$@"; grpc=$2; shift 2 ;;
	--iface) need "$@"; ifaces+=("$2"); shift 2 ;;
	--veth) need "$@"; veths+=("$2"); shift 2 ;;
	--mtu) need "$@"; mtu=$2; shift 2 ;;
	--log-level) need "$@"; log_level=$2; shift 2 ;;
	--log-file) need "$@"; log_file=$2; shift 2 ;;
	--cpu-port) need "$@"; cpu_port=$2; shift 2 ;;
	--json) need "$@"; json=$2; shift 2 ;;
	--run-dir) need "$@"; run_dir=$2; shift 2 ;;
	--wait) need "$@"; wait_secs=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done

# Checks that need nothing but the shell come first: a missing tool or a
# bad argument leaves no trace.
SSG=${SIMPLE_SWITCH_GRPC:-simple_switch_grpc}
require_tool simple_switch_grpc "$SSG" "install bmv2 with P4Runtime support as $BMV2_INSTALL describes (PI, then behavioral-model configured --with-pi), or set SIMPLE_SWITCH_GRPC to its path"
if ((${#veths[@]})); then
	require_tool ip ip "install iproute2 (apt-get install iproute2)"
	require_tool ethtool ethtool "install it (apt-get install ethtool); bmv2 cannot forward TCP over veths with offloads on"
fi

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$device_id" || usage_error "--device-id $device_id: not a number"
is_uint "$wait_secs" || usage_error "--wait $wait_secs: not a number"
[[ -z $mtu ]] || is_uint "$mtu" || usage_error "--mtu $mtu: not a number"
[[ -z $cpu_port ]] || { is_uint "$cpu_port" && ((cpu_port > 0)); } || usage_error "--cpu-port $cpu_port: a port number above 0"
case $log_level in
trace | debug | info | warn | error | off) ;;
*) usage_error "--log-level $log_level: one of trace, debug, info, warn, error, off" ;;
esac
[[ $grpc =~ ^(.+):([0-9]+)$ ]] || usage_error "--grpc $grpc: expected HOST:PORT"
grpc_host=${BASH_REMATCH[1]}
grpc_port=${BASH_REMATCH[2]}
# Where to check that the server listens.
case $grpc_host in
0.0.0.0 | '*') probe_host=127.0.0.1 ;;
'[::]') probe_host=::1 ;;
\[*\]) probe_host=${grpc_host:1:-1} ;;
*) probe_host=$grpc_host ;;
esac
[[ -z $json || -f $json ]] || usage_error "--json $json: no such file"
[[ -z $log_file || $log_file == ?*.txt ]] ||
	usage_error "--log-file $log_file: bmv2 writes its log to the name it is given plus .txt; give a name ending in .txt (such as $log_file.txt)"

ports=() # simple_switch_grpc -i arguments
declare -A used_port=() used_iface=()
add_port() {
	local n=$1 ifc=$2
	is_uint "$n" || usage_error "port '$n' of $ifc: not a number"
	[[ -n $ifc ]] || usage_error "port $n: no interface"
	[[ -z ${used_port[$n]:-} ]] || usage_error "port $n given twice"
	[[ -z ${used_iface[$ifc]:-} ]] || usage_error "interface $ifc given twice"
	used_port[$n]=1
	used_iface[$ifc]=1
	ports+=(-i "$n@$ifc")
}
for spec in ${ifaces[@]+"${ifaces[@]}"}; do
	[[ $spec == *@* ]] || usage_error "--iface $spec: expected N@IFACE"
	add_port "${spec%%@*}" "${spec#*@}"
done
veth_ifc=() veth_peer=() veth_ns=()
for spec in ${veths[@]+"${veths[@]}"}; do
	[[ $spec =~ ^([0-9]+)@([^:@]+):([^:@]+)(@([^:@]+))?$ ]] ||
		usage_error "--veth $spec: expected N@IFACE:PEER or N@IFACE:PEER@NETNS"
	# Copied out first: every [[ =~ ]] overwrites BASH_REMATCH.
	m=("${BASH_REMATCH[@]}")
	add_port "${m[1]}" "${m[2]}"
	veth_ifc+=("${m[2]}")
	veth_peer+=("${m[3]}")
	veth_ns+=("${m[5]:-}")
done
((${#ports[@]})) || usage_error "no ports: give --iface or --veth"

run_dir=${run_dir:-/tmp/beamer-bmv2-$device_id}
# bmv2 (its bundled spdlog) writes the log to the name it is given plus
# ".txt": $log_file is the file it writes, as users will look for it.
log_file=${log_file:-$run_dir/bmv2.log.txt}
[[ $log_level != off ]] || log_file=
pid_file=$run_dir/simple_switch_grpc.pid
veth_file=$run_dir/veths

if [[ -f $pid_file ]]; then
	read -r old_pid old_start <"$pid_file" || true
	if [[ -n ${old_pid:-} && "$(proc_start_time "$old_pid" || true)" == "${old_start:-}" ]]; then
		die "already running (pid $old_pid, $pid_file); stop it with $here/stop.sh --run-dir $run_dir"
	fi
fi
if [[ -s $veth_file ]]; then
	die "$veth_file lists veths of an earlier run; remove them with $here/stop.sh --run-dir $run_dir"
fi

# Everything else is checked before the first change to the system.
if ((${#veth_ifc[@]})) && ((EUID != 0)); then
	die "--veth needs root (it creates interfaces and moves them between namespaces)"
fi
for i in "${!veth_ifc[@]}"; do
	for ifc in "${veth_ifc[$i]}" "${veth_peer[$i]}"; do
		((${#ifc} <= 15)) || usage_error "interface name $ifc: longer than 15 characters"
	done
	! ip link show dev "${veth_ifc[$i]}" >/dev/null 2>&1 ||
		die "interface ${veth_ifc[$i]} exists already; use --iface to attach it"
	ns=${veth_ns[$i]}
	if [[ -n $ns ]]; then
		[[ -e /run/netns/$ns || -e /var/run/netns/$ns ]] ||
			die "network namespace $ns does not exist (create it with: ip netns add $ns)"
		! ip -n "$ns" link show dev "${veth_peer[$i]}" >/dev/null 2>&1 ||
			die "interface ${veth_peer[$i]} exists already in $ns"
	else
		! ip link show dev "${veth_peer[$i]}" >/dev/null 2>&1 ||
			die "interface ${veth_peer[$i]} exists already"
	fi
done
for spec in ${ifaces[@]+"${ifaces[@]}"}; do
	ip_ok=$(command -v ip || true)
	[[ -z $ip_ok ]] || ip link show dev "${spec#*@}" >/dev/null 2>&1 ||
		die "--iface $spec: no interface ${spec#*@}"
done

# Another listener would pass the readiness check below for bmv2.
if (exec 3<>"/dev/tcp/$probe_host/$grpc_port") 2>/dev/null; then
	die "something already listens on $grpc; choose another --grpc"
fi

mkdir -p "$run_dir"
: >"$veth_file"
started=
cleanup_on_failure() {
	local status=$?
	((status == 0)) && [[ -n $started ]] && return
	"$here/stop.sh" --run-dir "$run_dir" --quiet || true
	exit "$status"
}
trap cleanup_on_failure EXIT

# offloads_off NS IFACE: in namespace NS, or here when NS is empty.
offloads_off() {
	local ns=$1 ifc=$2 feature
	for feature in rx tx tso gso gro; do
		if [[ -n $ns ]]; then
			ip netns exec "$ns" ethtool -K "$ifc" "$feature" off >/dev/null 2>&1 || true
		else
			ethtool -K "$ifc" "$feature" off >/dev/null 2>&1 || true
		fi
	done
	# The checksum offloads are what breaks TCP; make sure they are off.
	local state
	if [[ -n $ns ]]; then
		state=$(ip netns exec "$ns" ethtool -k "$ifc")
	else
		state=$(ethtool -k "$ifc")
	fi
	[[ $state == *"tx-checksumming: off"* ]] || die "cannot turn TX checksum offload off on $ifc"
}

# ipv6_off NS IFACE: disables IPv6 on IFACE, in namespace NS or here when
# NS is empty (/proc/sys/net shows the namespace of the process reading
# it); nothing to do when the kernel has no IPv6.
ipv6_off() {
	local ns=$1 knob=/proc/sys/net/ipv6/conf/$2/disable_ipv6
	if [[ -n $ns ]]; then
		# shellcheck disable=SC2016 # $1 is the inner shell's
		ip netns exec "$ns" bash -c '[[ ! -e $1 ]] || echo 1 >"$1"' ipv6_off "$knob"
	elif [[ -e $knob ]]; then
		echo 1 >"$knob"
	fi
}

for i in "${!veth_ifc[@]}"; do
	ifc=${veth_ifc[$i]} peer=${veth_peer[$i]} ns=${veth_ns[$i]}
	# The peer is made in its namespace directly: its name may exist here.
	ip link add "$ifc" type veth peer name "$peer" ${ns:+netns "$ns"} ||
		die "cannot create the veth pair $ifc/$peer${ns:+ (peer in $ns)}"
	printf '%s\n' "$ifc" >>"$veth_file"
	if [[ -n $mtu ]]; then
		ip link set dev "$ifc" mtu "$mtu"
		ip ${ns:+-n "$ns"} link set dev "$peer" mtu "$mtu"
	fi
	# No IPv6 on either end, before they come up: the peer's router
	# solicitations, MLD reports and DAD would reach the mux, which counts
	# them as non_ipv4 drops.
	ipv6_off "" "$ifc"
	ipv6_off "$ns" "$peer"
	ip link set dev "$ifc" up
	ip ${ns:+-n "$ns"} link set dev "$peer" up
	offloads_off "" "$ifc"
	offloads_off "$ns" "$peer"
done

args=(--device-id "$device_id")
# Without --log-flush bmv2 buffers its log: a crash would leave it empty.
[[ -z $log_file ]] || args+=(--log-file "${log_file%.txt}" --log-flush)
args+=(--log-level "$log_level" "${ports[@]}")
if [[ -n $json ]]; then
	args+=("$json")
else
	args+=(--no-p4)
fi
args+=(-- --grpc-server-addr "$grpc")
[[ -z $cpu_port ]] || args+=(--cpu-port "$cpu_port")
args+=(${extra[@]+"${extra[@]}"})

# What the switch said, for a failed start: its output, then its log.
show_output() {
	printf '%s: simple_switch_grpc output (%s):\n' "$SCRIPT" "$run_dir/stdout.log" >&2
	tail -n 20 "$run_dir/stdout.log" >&2 || true
	if [[ -n $log_file && -s $log_file ]]; then
		printf '%s: end of its log (%s):\n' "$SCRIPT" "$log_file" >&2
		tail -n 20 "$log_file" >&2 || true
	fi
}

# setsid: the switch outlives this shell and its terminal.
setsid "$SSG" "${args[@]}" >"$run_dir/stdout.log" 2>&1 </dev/null &
pid=$!
if ! start_time=$(proc_start_time "$pid"); then
	sleep 0.1 # let a dying switch finish its output
	show_output
	die "simple_switch_grpc exited at once"
fi
printf '%s %s\n' "$pid" "$start_time" >"$pid_file"

# Ready when the P4Runtime port accepts connections.
deadline=$((SECONDS + wait_secs))
until (exec 3<>"/dev/tcp/$probe_host/$grpc_port") 2>/dev/null; do
	if ! kill -0 "$pid" 2>/dev/null; then
		show_output
		die "simple_switch_grpc exited before its P4Runtime server listened on $grpc"
	fi
	if ((SECONDS >= deadline)); then
		show_output
		die "no P4Runtime server on $grpc after ${wait_secs}s"
	fi
	sleep 0.2
done
started=1

printf 'simple_switch_grpc running: pid %s, device id %s, P4Runtime %s, ports %s\n' \
	"$pid" "$device_id" "$grpc" "${ports[*]}"
printf '  %s; output %s, log %s\n' "$([[ -n $json ]] && echo "loaded $json" || echo "no program: the controller pushes it")" "$run_dir/stdout.log" "${log_file:-off}"
printf '  stop with: %s/stop.sh --run-dir %s\n' "$here" "$run_dir"
