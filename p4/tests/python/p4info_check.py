"""Reads a generated P4Info with the official Python bindings (PyPI p4runtime).

Usage: p4info_check.py DIR ARCH
Decodes DIR/p4info.bin, parses DIR/p4info.txt, and checks that both are the
same message, that protobuf's own text printer writes DIR/p4info.txt byte for
byte, and that the message holds no field these bindings do not know.
Prints one summary line; exits non-zero on any mismatch.
"""

import sys

from google.protobuf import text_format
from p4.config.v1 import p4info_pb2


def main() -> int:
    out_dir, arch = sys.argv[1], sys.argv[2]
    with open(f"{out_dir}/p4info.bin", "rb") as f:
        raw = f.read()
    with open(f"{out_dir}/p4info.txt", encoding="utf-8") as f:
        text = f.read()

    from_bin = p4info_pb2.P4Info()
    from_bin.ParseFromString(raw)
    from_txt = text_format.Parse(text, p4info_pb2.P4Info())

    problems = []
    if from_bin != from_txt:
        problems.append("p4info.bin and p4info.txt differ")
    if from_bin.SerializeToString(deterministic=True) != raw:
        problems.append("re-encoding p4info.bin changes it (unknown or misordered fields)")
    if text_format.MessageToString(from_bin) != text:
        problems.append("p4info.txt is not what protobuf's text printer writes")
    if from_bin.pkg_info.arch != arch:
        problems.append(f"pkg_info.arch is {from_bin.pkg_info.arch!r}, not {arch!r}")
    if not from_bin.tables or not from_bin.actions:
        problems.append("no tables or no actions")

    for p in problems:
        print(f"{out_dir}: {p}")
    print(
        f"{out_dir}: {len(from_bin.tables)} tables, {len(from_bin.actions)} actions, "
        f"{len(from_bin.counters)} counters, {len(from_bin.direct_counters)} direct counters"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
