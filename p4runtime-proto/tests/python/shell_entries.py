#!/usr/bin/env python3
"""Beamer's P4Info and table entries as p4runtime-shell sees them.

Run by pipeline/tests/p4rt_shell.rs as `shell_entries.py DIR`. DIR holds

    beamer.p4info.txt   the pipeline's P4Info (beamer_pipeline::p4rt)
    rust_entries.bin    p4.v1.WriteRequest: the entries below, encoded in Rust

The script loads the P4Info into p4runtime-shell (no switch needed), builds
the same entries with the shell's TableEntry, by table, action, field and
parameter NAMES, and
  1. checks that Rust's encoding equals the shell's with canonical
     bytestrings, message for message (read-write symmetry);
  2. writes shell_canonical.bin and shell_padded.bin (the shell's two
     bytestring modes) for Rust to decode.

The entries (keep in step with ENTRIES in pipeline/tests/p4rt_shell.rs):
  vip     203.0.113.10 tcp 80      -> to_buckets(vip_id=3)
  vip     203.0.113.10 tcp 8001    -> to_server(dip=10.0.0.9)
  buckets vip_id 3, bucket 4095    -> forward(10.0.0.2, 10.0.0.3, 1700000000)
  buckets vip_id 0, bucket 0       -> forward(10.0.0.2, 0.0.0.0, 0)
  routes  10.1.0.0/16              -> route(511, 02:00:00:00:00:01, 00:00:5e:00:53:01)
  routes  192.0.2.1/32             -> route(1, 00:00:00:00:00:01, 00:00:00:00:00:02)
  config  default                  -> set_config(192.0.2.1, 7)
"""

import os
import sys

from google.protobuf import text_format
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2
from p4runtime_sh import shell as sh
from p4runtime_sh.global_options import global_options


def fail(msg):
    print("shell_entries: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def entries():
    def vip(port, action, **params):
        te = sh.TableEntry("vip")(action=action)
        te.match["dst_addr"] = "203.0.113.10"
        te.match["protocol"] = "6"
        te.match["dst_port"] = str(port)
        for k, v in params.items():
            te.action[k] = v
        return te

    def bucket(vip_id, b, dip, prev, t):
        te = sh.TableEntry("buckets")(action="forward")
        te.match["vip_id"] = str(vip_id)
        te.match["bucket"] = str(b)
        te.action["dip"] = dip
        te.action["prev_dip"] = prev
        te.action["change_time"] = str(t)
        return te

    def route(prefix, port, dst, src):
        te = sh.TableEntry("routes")(action="route")
        te.match["dst_addr"] = prefix
        te.action["port"] = str(port)
        te.action["dst_mac"] = dst
        te.action["src_mac"] = src
        return te

    config = sh.TableEntry("config")(is_default=True, action="set_config")
    config.action["tunnel_src"] = "192.0.2.1"
    config.action["generation"] = "7"

    inserts = [
        vip(80, "to_buckets", vip_id="3"),
        vip(8001, "to_server", dip="10.0.0.9"),
        bucket(3, 4095, "10.0.0.2", "10.0.0.3", 1700000000),
        bucket(0, 0, "10.0.0.2", "0.0.0.0", 0),
        route("10.1.0.0/16", 511, "02:00:00:00:00:01", "00:00:5e:00:53:01"),
        route("192.0.2.1/32", 1, "00:00:00:00:00:01", "00:00:00:00:00:02"),
    ]
    req = p4runtime_pb2.WriteRequest()
    for te in inserts:
        u = req.updates.add(type=p4runtime_pb2.Update.INSERT)
        u.entity.table_entry.CopyFrom(te.msg())
    u = req.updates.add(type=p4runtime_pb2.Update.MODIFY)
    u.entity.table_entry.CopyFrom(config.msg())
    return req


def main():
    if len(sys.argv) != 2:
        fail("usage: shell_entries.py DIR")
    directory = sys.argv[1]
    info = p4info_pb2.P4Info()
    with open(os.path.join(directory, "beamer.p4info.txt"), encoding="utf-8") as f:
        text_format.Merge(f.read(), info)
    sh.context.set_p4info(info)
    global_options["verbose"] = False

    global_options["canonical_bytestrings"] = True
    canonical = entries()
    global_options["canonical_bytestrings"] = False
    padded = entries()

    rust = p4runtime_pb2.WriteRequest()
    with open(os.path.join(directory, "rust_entries.bin"), "rb") as f:
        rust.ParseFromString(f.read())
    if len(rust.updates) != len(canonical.updates):
        fail(f"Rust sent {len(rust.updates)} updates, the shell built {len(canonical.updates)}")
    for i, (r, s) in enumerate(zip(rust.updates, canonical.updates)):
        if r != s:
            fail(f"update {i} differs.\n--- Rust:\n{text_format.MessageToString(r)}"
                 f"--- p4runtime-shell (canonical):\n{text_format.MessageToString(s)}")
    padded_differs = sum(a != b for a, b in zip(padded.updates, canonical.updates))

    for name, msg in (("shell_canonical.bin", canonical), ("shell_padded.bin", padded)):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(msg.SerializeToString())
    print(f"p4runtime-shell: loaded the P4Info ({len(info.tables)} tables, "
          f"{len(info.actions)} actions); {len(rust.updates)} Rust updates equal the shell's "
          f"canonical ones; {padded_differs} differ in padded mode")
    print("shell_entries: OK")


if __name__ == "__main__":
    main()
