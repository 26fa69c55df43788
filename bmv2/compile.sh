#!/usr/bin/env bash
# Compiles the generated v1model program with p4c for bmv2: writes the bmv2
# JSON (what simple_switch_grpc runs) and the P4Info p4c derives from it.
set -euo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() {
	cat <<EOF
Usage: $SCRIPT [--p4 FILE] [--out DIR] [-- extra p4c arguments]

Compiles the Beamer v1model program with p4c for bmv2 simple_switch_grpc.

  --p4 FILE   the program (default: $here/../p4/v1model/beamer.p4, as committed;
              'beamer gen --target v1model --out DIR' writes one for other sizes)
  --out DIR   output directory (default: build/v1model)

Writes DIR/<program>.json (the bmv2 JSON, the device config the controller
pushes), DIR/p4info.txt and DIR/p4info.bin.

Environment: P4C, the compiler to run (default: p4c).
Exit status: 0 compiled, 1 p4c failed, 2 bad usage, 69 p4c not installed.
EOF
}

p4="$here/../p4/v1model/beamer.p4"
out=build/v1model
extra=()
while (($#)); do
	case $1 in
	--p4) (($# >= 2)) || usage_error "--p4 needs a file"; p4=$2; shift 2 ;;
	--out) (($# >= 2)) || usage_error "--out needs a directory"; out=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done

P4C=${P4C:-p4c}
require_tool p4c "$P4C" "install it as $P4C_INSTALL describes (packages for Ubuntu and Debian, or a source build), or set P4C to its path"

[[ -f $p4 ]] || usage_error "--p4 $p4: no such file"

name=${p4##*/}
name=${name%.p4}
mkdir -p "$out"
"$P4C" --target bmv2 --arch v1model --std p4-16 \
	-o "$out" \
	--p4runtime-files "$out/p4info.txt,$out/p4info.bin" \
	${extra[@]+"${extra[@]}"} \
	"$p4" || die "p4c failed on $p4"

for f in "$out/$name.json" "$out/p4info.txt" "$out/p4info.bin"; do
	[[ -s $f ]] || die "p4c succeeded but did not write $f"
	printf 'wrote %s\n' "$f"
done
