#!/usr/bin/env python3
"""Wire compatibility of p4runtime-proto with the official Python bindings.

Run by tests/python_wire.rs as `wire_check.py DIR`. DIR holds what Rust
wrote:

    descriptor_set.bin        the crate's FileDescriptorSet
    rust_write_request.bin    p4.v1.WriteRequest
    rust_p4info.bin           p4.config.v1.P4Info
    rust_p4info.txt           the same P4Info in text format
    rust_stream_request.bin   p4.v1.StreamMessageRequest (arbitration)
    rust_status.bin           google.rpc.Status of a failed Write (the gRPC
                              status details), two p4.v1.Error details

This script
  1. compares the crate's descriptors with those of the PyPI package
     `p4runtime` (and googleapis-common-protos): every message, field,
     number, type, label, oneof and enum value the package has must exist
     in the crate, identically;
  2. decodes each Rust file and checks it field for field against the
     message the Rust test built (rebuilt here from the same values), with
     no unknown fields anywhere;
  3. parses the text-format P4Info with google.protobuf.text_format.Merge,
     as bmv2 and p4runtime-shell read it;
  4. writes py_*.bin / py_p4info.txt messages built here for the Rust side
     to decode and check.

Exit status 0 and a last line "wire_check: OK" on success.
"""

import os
import sys

from google.protobuf import any_pb2, descriptor_pb2, text_format
from google.rpc import code_pb2, status_pb2
from p4.config.v1 import p4info_pb2, p4types_pb2
from p4.v1 import p4data_pb2, p4runtime_pb2


def fail(msg):
    print("wire_check: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- 1. descriptors ----------------------------------------------------------

def our_files(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return {f.name: f for f in fds.file}


def their_file(module):
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


def compare_enum(where, theirs, ours, problems):
    ours_by_name = {v.name: v.number for v in ours.value}
    for v in theirs.value:
        if v.name not in ours_by_name:
            problems.append(f"{where}: missing enum value {v.name}")
        elif ours_by_name[v.name] != v.number:
            problems.append(
                f"{where}.{v.name}: number {ours_by_name[v.name]}, expected {v.number}")


def compare_message(where, theirs, ours, problems, extras):
    ours_fields = {f.name: f for f in ours.field}
    theirs_names = {f.name for f in theirs.field}
    for f in theirs.field:
        o = ours_fields.get(f.name)
        if o is None:
            problems.append(f"{where}: missing field {f.name} = {f.number}")
            continue
        for attr in ("number", "type", "label", "type_name"):
            if getattr(o, attr) != getattr(f, attr):
                problems.append(
                    f"{where}.{f.name}: {attr} {getattr(o, attr)!r}, expected {getattr(f, attr)!r}")
        t_oneof = theirs.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        o_oneof = ours.oneof_decl[o.oneof_index].name if o.HasField("oneof_index") else None
        if t_oneof != o_oneof:
            problems.append(f"{where}.{f.name}: oneof {o_oneof!r}, expected {t_oneof!r}")
    for o in ours.field:
        if o.name not in theirs_names:
            extras.append(f"{where}.{o.name} = {o.number}")
    ours_nested = {m.name: m for m in ours.nested_type}
    for m in theirs.nested_type:
        if m.name not in ours_nested:
            problems.append(f"{where}: missing nested message {m.name}")
        else:
            compare_message(f"{where}.{m.name}", m, ours_nested[m.name], problems, extras)
    ours_enums = {e.name: e for e in ours.enum_type}
    for e in theirs.enum_type:
        if e.name not in ours_enums:
            problems.append(f"{where}: missing nested enum {e.name}")
        else:
            compare_enum(f"{where}.{e.name}", e, ours_enums[e.name], problems)


def compare_descriptors(directory):
    ours = our_files(os.path.join(directory, "descriptor_set.bin"))
    problems, extras = [], []
    modules = [p4runtime_pb2, p4data_pb2, p4info_pb2, p4types_pb2, status_pb2, code_pb2]
    for module in modules:
        theirs = their_file(module)
        mine = ours.get(theirs.name)
        if mine is None:
            problems.append(f"file {theirs.name} missing from the descriptor set")
            continue
        if mine.package != theirs.package:
            problems.append(f"{theirs.name}: package {mine.package}, expected {theirs.package}")
        if list(mine.dependency) != list(theirs.dependency) and \
                set(mine.dependency) != set(theirs.dependency):
            problems.append(
                f"{theirs.name}: imports {list(mine.dependency)}, expected {list(theirs.dependency)}")
        mine_msgs = {m.name: m for m in mine.message_type}
        for m in theirs.message_type:
            if m.name not in mine_msgs:
                problems.append(f"{theirs.package}.{m.name}: missing message")
            else:
                compare_message(f"{theirs.package}.{m.name}", m, mine_msgs[m.name],
                                problems, extras)
        mine_enums = {e.name: e for e in mine.enum_type}
        for e in theirs.enum_type:
            if e.name not in mine_enums:
                problems.append(f"{theirs.package}.{e.name}: missing enum")
            else:
                compare_enum(f"{theirs.package}.{e.name}", e, mine_enums[e.name], problems)
        services = {s.name: s for s in mine.service}
        for s in theirs.service:
            ms = services.get(s.name)
            if ms is None:
                problems.append(f"service {s.name} missing")
                continue
            mine_methods = {m.name: m for m in ms.method}
            for m in s.method:
                mm = mine_methods.get(m.name)
                if mm is None:
                    problems.append(f"{s.name}.{m.name}: missing rpc")
                    continue
                for attr in ("input_type", "output_type", "client_streaming",
                             "server_streaming"):
                    if getattr(mm, attr) != getattr(m, attr):
                        problems.append(f"{s.name}.{m.name}: {attr} differs")
    if problems:
        fail("descriptors differ from the p4runtime package:\n  " + "\n  ".join(problems))
    print(f"descriptors: every message, field and enum of the {len(modules)} "
          f"Python modules matches; fields newer than the package: "
          f"{', '.join(extras) or 'none'}")


# ---- helpers ---------------------------------------------------------------------

def no_unknown_fields(msg, where):
    """Fails when a message (recursively) holds fields its type does not know."""
    if len(msg.UnknownFields()):
        fail(f"{where}: unknown fields (wrong field number or type on the Rust side)")
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values() if field.message_type.fields_by_name["value"].message_type else []
            for v in items:
                no_unknown_fields(v, f"{where}.{field.name}[]")
        elif field.label == field.LABEL_REPEATED:
            for i, v in enumerate(value):
                no_unknown_fields(v, f"{where}.{field.name}[{i}]")
        else:
            no_unknown_fields(value, f"{where}.{field.name}")


def read(directory, name, cls):
    msg = cls()
    with open(os.path.join(directory, name), "rb") as f:
        msg.ParseFromString(f.read())
    no_unknown_fields(msg, name)
    return msg


def expect_equal(name, got, want):
    if got != want:
        fail(f"{name} differs.\n--- decoded:\n{text_format.MessageToString(got)}"
             f"--- expected:\n{text_format.MessageToString(want)}")


def exact(fid, value):
    return p4runtime_pb2.FieldMatch(field_id=fid, exact=p4runtime_pb2.FieldMatch.Exact(value=value))


def param(pid, value):
    return p4runtime_pb2.Action.Param(param_id=pid, value=value)


def table_update(kind, entry):
    return p4runtime_pb2.Update(type=kind, entity=p4runtime_pb2.Entity(table_entry=entry))


# ---- 2. what Rust sent (the values of tests/python_wire.rs) ---------------------------

def expected_rust_write_request():
    P = p4runtime_pb2
    req = P.WriteRequest(device_id=1, role="beamer", atomicity=P.WriteRequest.ROLLBACK_ON_ERROR)
    req.election_id.high = 1
    req.election_id.low = 0x10
    vip = P.TableEntry(
        table_id=0x02000001,
        match=[exact(1, b"\x0a\x00\x00\x01"), exact(2, b"\x06"), exact(3, b"\x50")],
        counter_data=P.CounterData(byte_count=1500, packet_count=1),
    )
    vip.action.action.action_id = 0x01000001
    vip.action.action.params.append(param(1, b"\x07"))
    req.updates.append(table_update(P.Update.INSERT, vip))

    route = P.TableEntry(table_id=0x02000003)
    route.match.append(P.FieldMatch(
        field_id=1, lpm=P.FieldMatch.LPM(value=b"\x0a\x01\x00\x00", prefix_len=16)))
    route.action.action.action_id = 0x01000006
    route.action.action.params.extend([
        param(1, b"\x01\xff"),
        param(2, b"\x02\x00\x00\x00\x00\x01"),
        param(3, b"\x5e\x00\x53\x01"),
    ])
    req.updates.append(table_update(P.Update.MODIFY, route))

    config = P.TableEntry(table_id=0x02000004, is_default_action=True)
    config.action.action.action_id = 0x01000008
    config.action.action.params.extend([param(1, b"\xc0\x00\x02\x01"), param(2, b"\x2a")])
    req.updates.append(table_update(P.Update.MODIFY, config))

    req.updates.append(table_update(P.Update.DELETE, P.TableEntry(
        table_id=0x02000002, match=[exact(1, b"\x01"), exact(2, b"\x0f\xff")])))

    acl = P.TableEntry(table_id=0x020000AA, priority=10)
    acl.match.extend([
        P.FieldMatch(field_id=1, ternary=P.FieldMatch.Ternary(value=b"\x0a\x00", mask=b"\xff\x00")),
        P.FieldMatch(field_id=2, range=P.FieldMatch.Range(low=b"\x04\x00", high=b"\x07\xff")),
        P.FieldMatch(field_id=3, optional=P.FieldMatch.Optional(value=b"\x11")),
    ])
    acl.action.action.action_id = 0x010000AA
    req.updates.append(table_update(P.Update.INSERT, acl))

    dce = P.DirectCounterEntry(
        table_entry=P.TableEntry(table_id=0x02000002, match=[exact(1, b"\x01"), exact(2, b"\x00")]),
        data=P.CounterData(byte_count=1 << 40, packet_count=(1 << 33) + 5),
    )
    req.updates.append(P.Update(type=P.Update.MODIFY, entity=P.Entity(direct_counter_entry=dce)))

    ce = P.CounterEntry(counter_id=0x12000001, index=P.Index(index=4),
                        data=P.CounterData(byte_count=64, packet_count=1))
    req.updates.append(P.Update(type=P.Update.MODIFY, entity=P.Entity(counter_entry=ce)))
    return req


def expected_rust_p4info():
    I = p4info_pb2
    info = I.P4Info()
    info.pkg_info.name = "beamer"
    info.pkg_info.arch = "v1model"
    info.pkg_info.doc.brief = 'say "hi"\n\ttabbed \\ backslash'
    info.pkg_info.doc.description = "na\u00efve \u2013 \u00fcnicode"

    t = info.tables.add()
    t.preamble.id = 0x02000001
    t.preamble.name = "BeamerIngress.vip"
    t.preamble.alias = "vip"
    t.match_fields.add(id=1, name="dst_addr", bitwidth=32, match_type=I.MatchField.EXACT)
    t.match_fields.add(id=2, name="prefix", bitwidth=32, match_type=I.MatchField.LPM)
    t.action_refs.add(id=0x01000001)
    t.action_refs.add(id=0x01000003, scope=I.ActionRef.DEFAULT_ONLY, annotations=["@defaultonly"])
    t.const_default_action_id = 0x01000003
    t.direct_resource_ids.append(0x13000001)
    t.size = 1024

    a = info.actions.add()
    a.preamble.id = 0x01000001
    a.preamble.name = "BeamerIngress.to_buckets"
    a.preamble.alias = "to_buckets"
    a.params.add(id=1, name="vip_id", bitwidth=16)
    b = info.actions.add()
    b.preamble.id = 0x01000003
    b.preamble.name = "BeamerIngress.vip_miss"
    b.preamble.alias = "vip_miss"

    c = info.counters.add()
    c.preamble.id = 0x12000001
    c.preamble.name = "BeamerIngress.drops"
    c.preamble.alias = "drops"
    c.spec.unit = I.CounterSpec.BOTH
    c.size = 7

    d = info.direct_counters.add()
    d.preamble.id = 0x13000001
    d.preamble.name = "BeamerIngress.vip_counter"
    d.preamble.alias = "vip_counter"
    d.spec.unit = I.CounterSpec.BOTH
    d.direct_table_id = 0x02000001

    for name, bits in (("PortId_t", 9), ("Mac_t", 48)):
        info.type_info.new_types[name].original_type.bitstring.bit.bitwidth = bits
    return info


def expected_rust_stream_request():
    P = p4runtime_pb2
    req = P.StreamMessageRequest()
    req.arbitration.device_id = 1
    req.arbitration.role.name = "beamer"
    req.arbitration.election_id.high = 0
    req.arbitration.election_id.low = 42
    return req


def check_rust_messages(directory):
    wr = read(directory, "rust_write_request.bin", p4runtime_pb2.WriteRequest)
    expect_equal("WriteRequest", wr, expected_rust_write_request())
    # A few fields spelled out, so a failure here reads like the spec.
    assert wr.updates[0].type == p4runtime_pb2.Update.INSERT
    assert wr.updates[0].entity.WhichOneof("entity") == "table_entry"
    assert wr.updates[0].entity.table_entry.match[0].WhichOneof("field_match_type") == "exact"
    assert wr.updates[1].entity.table_entry.match[0].lpm.prefix_len == 16
    assert wr.updates[2].entity.table_entry.is_default_action
    assert wr.updates[5].entity.direct_counter_entry.data.byte_count == 1 << 40
    assert (wr.election_id.high, wr.election_id.low) == (1, 0x10)

    info = read(directory, "rust_p4info.bin", p4info_pb2.P4Info)
    expect_equal("P4Info", info, expected_rust_p4info())
    assert info.tables[0].action_refs[1].scope == p4info_pb2.ActionRef.DEFAULT_ONLY
    assert info.direct_counters[0].direct_table_id == info.tables[0].preamble.id

    from_text = p4info_pb2.P4Info()
    with open(os.path.join(directory, "rust_p4info.txt"), encoding="utf-8") as f:
        text_format.Merge(f.read(), from_text)
    expect_equal("P4Info (text format)", from_text, expected_rust_p4info())

    sr = read(directory, "rust_stream_request.bin", p4runtime_pb2.StreamMessageRequest)
    expect_equal("StreamMessageRequest", sr, expected_rust_stream_request())
    assert sr.WhichOneof("update") == "arbitration"
    status = read(directory, "rust_status.bin", status_pb2.Status)
    assert status.code == code_pb2.UNKNOWN and status.message == "1 of 2 updates failed"
    errors = []
    for detail in status.details:
        err = p4runtime_pb2.Error()
        if not detail.Unpack(err):
            fail(f"status detail of type {detail.type_url} is not a p4.v1.Error")
        no_unknown_fields(err, "rust_status.bin detail")
        errors.append(err)
    expect_equal("Error[0]", errors[0], p4runtime_pb2.Error(canonical_code=code_pb2.OK))
    expect_equal("Error[1]", errors[1], p4runtime_pb2.Error(
        canonical_code=code_pb2.OUT_OF_RANGE, message="bucket 4096 needs 13 bits"))

    print("rust -> python: WriteRequest (7 updates), P4Info (binary and text), "
          "StreamMessageRequest, batch error Status decode field for field")


# ---- 4. what Python sends (checked by tests/python_wire.rs) ------------------------------

def python_messages():
    P = p4runtime_pb2
    wr = P.WriteRequest(device_id=3, role="", atomicity=P.WriteRequest.CONTINUE_ON_ERROR)
    wr.election_id.low = 2
    bucket = P.TableEntry(table_id=0x02000002,
                          match=[exact(1, b"\x00\x01"), exact(2, b"\x00\x2a")],
                          counter_data=P.CounterData())
    bucket.action.action.action_id = 0x01000004
    bucket.action.action.params.extend([
        param(1, b"\x0a\x00\x00\x02"), param(2, b"\x0a\x00\x00\x03"), param(3, b"\x65\x4f\x1a\x00")])
    wr.updates.append(table_update(P.Update.INSERT, bucket))
    wr.updates.append(table_update(P.Update.DELETE, P.TableEntry(
        table_id=0x02000003,
        match=[P.FieldMatch(field_id=1, lpm=P.FieldMatch.LPM(value=b"\xc0\xa8\x00\x00", prefix_len=24))])))

    rr = P.ReadResponse()
    e = rr.entities.add().table_entry
    e.CopyFrom(bucket)
    e.counter_data.byte_count = 9000
    e.counter_data.packet_count = 6
    ce = rr.entities.add().counter_entry
    ce.counter_id = 0x12000001
    ce.index.index = 0
    ce.data.packet_count = 3

    resp = P.StreamMessageResponse()
    resp.arbitration.device_id = 3
    resp.arbitration.election_id.high = 5
    resp.arbitration.election_id.low = 6
    resp.arbitration.status.code = code_pb2.ALREADY_EXISTS
    resp.arbitration.status.message = "you are a backup"

    status = status_pb2.Status(code=code_pb2.UNKNOWN, message="Write failure.")
    for err in (P.Error(canonical_code=code_pb2.RESOURCE_EXHAUSTED, message="Table is full.",
                        space="beamer", code=500),
                P.Error(canonical_code=code_pb2.OK)):
        detail = any_pb2.Any()
        detail.Pack(err)
        status.details.append(detail)

    info = p4info_pb2.P4Info()
    info.pkg_info.arch = "tna"
    t = info.tables.add()
    t.preamble.id = 0x02000003
    t.preamble.name = "pipe.BeamerIngress.routes"
    t.preamble.alias = "routes"
    t.match_fields.add(id=1, name="dst_addr", bitwidth=32, match_type=p4info_pb2.MatchField.LPM)
    t.action_refs.add(id=0x01000006, scope=p4info_pb2.ActionRef.TABLE_ONLY, annotations=["@tableonly"])
    t.size = 16384
    t.idle_timeout_behavior = p4info_pb2.Table.NO_TIMEOUT
    a = info.actions.add()
    a.preamble.id = 0x01000006
    a.preamble.name = "pipe.BeamerIngress.route"
    a.params.add(id=1, name="port", bitwidth=9)
    info.type_info.new_types["PortId_t"].translated_type.sdn_bitwidth = 32
    info.type_info.new_types["PortId_t"].translated_type.uri = "tna/PortId_t"

    cfg = P.SetForwardingPipelineConfigRequest(
        device_id=3, action=P.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
    cfg.election_id.low = 2
    cfg.config.p4info.CopyFrom(info)
    cfg.config.p4_device_config = b"\x00\x01binary"
    cfg.config.cookie.cookie = 77

    return {
        "py_write_request.bin": wr,
        "py_read_response.bin": rr,
        "py_stream_response.bin": resp,
        "py_status.bin": status,
        "py_p4info.bin": info,
        "py_set_pipeline.bin": cfg,
    }, info


def write_python_messages(directory):
    messages, info = python_messages()
    for name, msg in messages.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(msg.SerializeToString())
    with open(os.path.join(directory, "py_p4info.txt"), "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(info))
    print(f"python -> rust: wrote {len(messages)} messages and a text-format P4Info")


def main():
    if len(sys.argv) != 2:
        fail("usage: wire_check.py DIR")
    directory = sys.argv[1]
    compare_descriptors(directory)
    check_rust_messages(directory)
    write_python_messages(directory)
    print("wire_check: OK")


if __name__ == "__main__":
    main()
