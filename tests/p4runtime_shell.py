#!/usr/bin/env python3
"""p4runtime-shell drives a running `beamer switch --p4rt`.

Run by tests/p4runtime_shell.rs as `p4runtime_shell.py SPEC.json`. SPEC
names the server, the P4Info (text) and the device config file (empty: the
software switch has its program built in), and the entries to write:

    vip      VIP tcp/80             -> to_buckets(vip_id)
    vip      VIP tcp/SERVER_PORT    -> to_server(SERVER)
    buckets  (vip_id, b) of each flow -> forward(dip, 0.0.0.0, 0)
    routes   ROUTE                  -> route(PORT, NEXT_HOP, OUR_MAC)
    config   default                -> set_config(TUNNEL_SRC, GENERATION)

Steps, each checked:
  1. setup() pushes the pipeline (VERIFY_AND_COMMIT, election id (0, 1));
  2. insert the entries, read every table back;
  3. modify the first flow's bucket (new dip, the old one as prev_dip) and
     delete the last flow's bucket; read back;
  4. print READY and wait for a line on stdin: the Rust test sends the
     packets meanwhile;
  5. poll the bucket direct counters and the drop counter until they show
     the packets (SPEC's expected counts), and print them.
Ends with "p4runtime_shell: OK".
"""

import json
import os
import sys
import time
import traceback

from p4runtime_sh import shell as sh


def fail(msg):
    print("p4runtime_shell: FAILED: " + msg, flush=True)
    try:
        sh.teardown()
    finally:
        sys.exit(1)


def value(field):
    """The integer of an exact match field or action param (any bytestring)."""
    return int.from_bytes(field, "big")


def ip(text):
    return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")


def bucket_entry(spec, flow, action=True):
    # The full name: a DirectCounterEntry insists on it for its table.
    table = spec["buckets_table"]
    te = sh.TableEntry(table)(action="forward") if action else sh.TableEntry(table)
    te.match["vip_id"] = str(spec["vip_id"])
    te.match["bucket"] = str(flow["bucket"])
    return te


def read_buckets():
    """{bucket: (dip, prev_dip, change_time)} as read from the switch."""
    out = {}
    for te in sh.TableEntry("buckets").read():
        m = te.msg()
        key = {f.field_id: value(f.exact.value) for f in m.match}
        params = {p.param_id: value(p.value) for p in m.action.action.params}
        out[key[2]] = (params[1], params[2], params[3])
    return out


def count_entries(table):
    return sum(1 for _ in sh.TableEntry(table).read())


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    sh.setup(
        device_id=spec["device_id"],
        grpc_addr=spec["grpc_addr"],
        election_id=(0, 1),
        config=sh.FwdPipeConfig(spec["p4info"], spec["device_config"]),
        verbose=False,
    )
    print("p4runtime-shell: pipeline set", flush=True)

    # 2. Insert.
    te = sh.TableEntry("vip")(action="to_buckets")
    te.match["dst_addr"] = spec["vip"]
    te.match["protocol"] = "6"
    te.match["dst_port"] = "80"
    te.action["vip_id"] = str(spec["vip_id"])
    te.insert()
    te = sh.TableEntry("vip")(action="to_server")
    te.match["dst_addr"] = spec["vip"]
    te.match["protocol"] = "6"
    te.match["dst_port"] = str(spec["server_port"])
    te.action["dip"] = spec["server"]
    te.insert()
    for flow in spec["flows"]:
        te = bucket_entry(spec, flow)
        te.action["dip"] = flow["dip"]
        te.action["prev_dip"] = "0.0.0.0"
        te.action["change_time"] = "0"
        te.insert()
    te = sh.TableEntry("routes")(action="route")
    te.match["dst_addr"] = spec["route"]
    te.action["port"] = str(spec["port"])
    te.action["dst_mac"] = spec["next_hop"]
    te.action["src_mac"] = spec["our_mac"]
    te.insert()
    te = sh.TableEntry("config")(is_default=True, action="set_config")
    te.action["tunnel_src"] = spec["tunnel_src"]
    te.action["generation"] = str(spec["generation"])
    te.modify()

    # Read back what was written.
    if count_entries("vip") != 2 or count_entries("routes") != 1:
        fail("vip or routes entries do not read back")
    want = {f["bucket"]: (ip(f["dip"]), 0, 0) for f in spec["flows"]}
    got = read_buckets()
    if got != want:
        fail(f"buckets read back as {got}, wrote {want}")
    cfg = next(iter(sh.TableEntry("config")(is_default=True).read())).msg()
    params = [value(p.value) for p in cfg.action.action.params]
    if params != [ip(spec["tunnel_src"]), spec["generation"]]:
        fail(f"config reads back as {params}")
    print(f"p4runtime-shell: inserted and read back {len(got)} buckets, 2 VIP entries, "
          "1 route, the config", flush=True)

    # 3. Modify the first flow's bucket, delete the last one's.
    first, last = spec["flows"][0], spec["flows"][-1]
    te = bucket_entry(spec, first)
    te.action["dip"] = spec["new_dip"]
    te.action["prev_dip"] = first["dip"]
    te.action["change_time"] = str(spec["change_time"])
    te.modify()
    bucket_entry(spec, last, action=False).delete()
    want[first["bucket"]] = (ip(spec["new_dip"]), ip(first["dip"]), spec["change_time"])
    del want[last["bucket"]]
    got = read_buckets()
    if got != want:
        fail(f"after modify and delete, buckets read back as {got}, expected {want}")
    print("p4runtime-shell: modified one bucket, deleted one, read back", flush=True)

    # 4. Packets.
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "SENT":
        fail("the test did not send the packets")

    # 5. Counters, once the switch has seen the packets.
    deadline = time.time() + 20
    while True:
        counts = {}
        for flow in spec["flows"][:-1]:
            dce = sh.DirectCounterEntry("bucket_counter")
            dce.table_entry = bucket_entry(spec, flow, action=False)
            for e in dce.read():
                counts[flow["bucket"]] = (e.packet_count, e.byte_count)
        drops = sh.CounterEntry("drops")
        drops.index = spec["bucket_miss_index"]
        misses = [(e.packet_count, e.byte_count) for e in drops.read()]
        expected = {f["bucket"]: (f["packets"], f["packets"] * spec["frame_len"])
                    for f in spec["flows"][:-1]}
        expected_misses = [(spec["flows"][-1]["packets"],
                            spec["flows"][-1]["packets"] * spec["frame_len"])]
        if counts == expected and misses == expected_misses:
            break
        if time.time() > deadline:
            fail(f"direct counters {counts} (expected {expected}), bucket_miss drops "
                 f"{misses} (expected {expected_misses})")
        time.sleep(0.1)
    print(f"p4runtime-shell: bucket direct counters {counts}; bucket_miss drops {misses}",
          flush=True)
    sh.teardown()
    print("p4runtime_shell: OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        # The shell's stream thread would keep a plain exit waiting.
        traceback.print_exc(file=sys.stdout)
        print("p4runtime_shell: FAILED", flush=True)
        os._exit(1)
