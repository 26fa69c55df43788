//! The P4_16 program text, for v1model and TNA.
//!
//! Both programs are written by the same code: the headers, parser states,
//! tables, actions and the ingress control flow are shared, and only the
//! architecture's externs and intrinsic metadata differ. Every name, ID,
//! width, size and constant comes from [`beamer_pipeline`].

use crate::layout::{self, Header};
use crate::writer::Writer;
use beamer_pipeline::hash::{CRC32_INIT, CRC32_POLY, CRC32_REFLECTED, CRC32_XOR_OUT};
use beamer_pipeline::schema::{
    self, Action, ActionRef, DirectCounter, MatchField, MatchKind, PROGRAM_NAME, Scope, Table,
};
use beamer_pipeline::wire::{ethernet, ipv4, option};
use beamer_pipeline::{DropReason, PipelineParams, Target};

/// Bytes a Tofino counter counts beyond the frame as the other targets see
/// it: the 4-byte Ethernet FCS. TNA's `count()` subtracts its argument.
pub const TOFINO_COUNTED_FCS_BYTES: u32 = 4;

/// The command line that writes the files for `target` and `params`, as
/// quoted in the header of every generated file.
pub fn command_line(target: Target, params: &PipelineParams) -> String {
    format!(
        "beamer gen --target {target} --buckets {} --max-vips {} --max-vip-entries {} \
         --routes {} --out <dir>",
        params.buckets, params.max_vips, params.max_vip_entries, params.routes
    )
}

/// Writes the P4_16 program for `target`. `params` must have passed
/// [`PipelineParams::validate`] for `target`.
pub fn program(target: Target, params: &PipelineParams) -> String {
    let mut g = Gen {
        t: target,
        p: params,
        w: Writer::default(),
    };
    g.preamble();
    g.constants();
    g.headers();
    g.structs();
    g.parser();
    if target == Target::V1model {
        g.v1model_verify_checksum();
    }
    g.ingress();
    match target {
        Target::V1model => {
            g.v1model_egress();
            g.v1model_compute_checksum();
            g.v1model_deparser();
            g.v1model_main();
        }
        Target::Tna => {
            g.tna_ingress_deparser();
            g.tna_egress();
            g.tna_main();
        }
    }
    g.w.finish()
}

// ---- names used in the program (P4 identifiers, not control-plane names) --

/// Header instances in `headers_t`, in deparse order.
const H_ETHERNET: &str = "ethernet";
const H_OUTER_IPV4: &str = "outer_ipv4";
const H_OPTION: &str = "beamer_option";
const H_IPV4: &str = "ipv4";
const H_TCP: &str = "tcp";
const H_UDP: &str = "udp";

/// The metadata fields, each with its width and purpose.
fn metadata_fields(params: &PipelineParams) -> Vec<(u32, &'static str, &'static str)> {
    vec![
        (
            schema::L4_PORT_BITS,
            "l4_src_port",
            "TCP/UDP source port: hash input",
        ),
        (
            schema::L4_PORT_BITS,
            "l4_dst_port",
            "TCP/UDP destination port: VIP key",
        ),
        (
            schema::VIP_ID_BITS,
            "vip_id",
            "bucket set of the VIP entry hit",
        ),
        (
            params.bucket_bits().into(),
            "bucket",
            "low k bits of the CRC-32 of (source address, source port)",
        ),
        (
            schema::IPV4_BITS,
            "route_dst",
            "route key: the IPv4 destination, the DIP once encapsulated",
        ),
        (schema::IPV4_BITS, "tunnel_src", "from the config table"),
        (
            schema::GENERATION_BITS,
            "generation",
            "from the config table",
        ),
        (1, "to_buckets", "the VIP entry says: look up the buckets"),
        (1, "encap", "the packet leaves IP-in-IP"),
        (
            1,
            "routed",
            "routed as is: TTL decremented, checksum recomputed",
        ),
        (1, "drop", "the packet is dropped and counted"),
    ]
}

/// Width of the drop-reason index.
fn drop_reason_bits() -> u32 {
    let max = (DropReason::COUNT - 1) as u32;
    (u32::BITS - max.leading_zeros()).max(1)
}

/// The P4 constant naming a drop reason.
fn drop_const(r: DropReason) -> String {
    format!("DROP_{}", r.name().to_ascii_uppercase())
}

/// Width of a header field, from the layout.
fn bits_of(h: &Header, field: &str) -> u32 {
    h.field(field)
        .unwrap_or_else(|| panic!("{} has no field {field}", h.type_name))
        .bits
}

/// The name of parameter `id` of `action`.
fn param(action: &Action, id: u32) -> &'static str {
    action
        .params
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("action {} has no parameter {id}", action.name))
        .name
}

/// The P4 expression a key field of a table matches on.
fn key_expr(table: &Table, key: &MatchField) -> String {
    use schema::{buckets_key, routes_key, vip_key};
    let expr = if table.id == schema::VIP.id {
        match key.id {
            vip_key::DST_ADDR => "hdr.ipv4.dst_addr",
            vip_key::PROTOCOL => "hdr.ipv4.protocol",
            vip_key::DST_PORT => "meta.l4_dst_port",
            _ => "",
        }
    } else if table.id == schema::BUCKETS.id {
        match key.id {
            buckets_key::VIP_ID => "meta.vip_id",
            buckets_key::BUCKET => "meta.bucket",
            _ => "",
        }
    } else if table.id == schema::ROUTES.id {
        match key.id {
            routes_key::DST_ADDR => "meta.route_dst",
            _ => "",
        }
    } else {
        ""
    };
    assert!(
        !expr.is_empty(),
        "the generator does not know key {} of table {}",
        key.name,
        table.name
    );
    expr.to_string()
}

/// `0x` and `width / 4` hex digits.
fn hex(v: u64, bits: u32) -> String {
    format!("0x{v:0w$x}", w = bits.div_ceil(4) as usize)
}

struct Gen<'a> {
    t: Target,
    p: &'a PipelineParams,
    w: Writer,
}

impl Gen<'_> {
    fn is_tna(&self) -> bool {
        self.t == Target::Tna
    }

    /// A section title comment.
    fn section(&mut self, title: &str) {
        self.w.line(format!("// ---- {title} ----"));
        self.w.blank();
    }

    fn preamble(&mut self) {
        let w = &mut self.w;
        let (arch, runs_on) = match self.t {
            Target::V1model => ("v1model", "bmv2 simple_switch_grpc"),
            Target::Tna => ("TNA", "Tofino, compiled by bf-p4c"),
        };
        w.line("// GENERATED FILE. Do not edit: regenerate with");
        w.line(format!("//   {}", command_line(self.t, self.p)));
        w.line("// from the pipeline definition in the beamer-pipeline crate.");
        w.line("//");
        w.line(format!("// Beamer mux, P4_16 for {arch} ({runs_on})."));
        w.line("// Parse Ethernet/IPv4/TCP/UDP; drop and count truncated, non-IPv4,");
        w.line("// options and fragments; VIP table; bucket = low k bits of CRC-32 over");
        w.line("// (IPv4 source, L4 source port); bucket table; IP-in-IP encapsulation");
        w.line("// with the 16-byte Beamer option (bucket path) or without (per-server");
        w.line("// port); LPM route on the (outer) destination; per-entry and per-drop");
        w.line("// counters.");
        w.blank();
        w.line("#include <core.p4>");
        match self.t {
            Target::V1model => w.line("#include <v1model.p4>"),
            Target::Tna => w.line("#include <tna.p4>"),
        }
        w.blank();
    }

    fn constants(&mut self) {
        let eth = layout::ethernet();
        let ip = layout::ipv4();
        let opt = layout::beamer_option();
        self.section("Constants, from beamer-pipeline");
        let type_bits = bits_of(&eth, "ether_type");
        let nib = bits_of(&ip, "ihl");
        let proto = bits_of(&ip, "protocol");
        let len = bits_of(&ip, "total_len");
        let ff = bits_of(&ip, "flags_frag");
        let consts: Vec<(u32, &str, String, &str)> = vec![
            (
                type_bits,
                "ETHERTYPE_IPV4",
                hex(ethernet::ETHERTYPE_IPV4.into(), type_bits),
                "",
            ),
            (nib, "IPV4_VERSION", ipv4::VERSION.to_string(), ""),
            (
                nib,
                "IHL_NO_OPTIONS",
                ipv4::IHL_NO_OPTIONS.to_string(),
                "20-byte header",
            ),
            (
                nib,
                "IHL_WITH_OPTION",
                option::OUTER_IHL.to_string(),
                "20-byte header and the 16-byte option",
            ),
            (proto, "PROTO_IPIP", ipv4::PROTO_IPIP.to_string(), ""),
            (proto, "PROTO_TCP", ipv4::PROTO_TCP.to_string(), ""),
            (proto, "PROTO_UDP", ipv4::PROTO_UDP.to_string(), ""),
            (
                ff,
                "FRAGMENT_BITS",
                hex((ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK).into(), ff),
                "MF flag and fragment offset; the reserved flag is ignored",
            ),
            (
                bits_of(&ip, "ttl"),
                "OUTER_TTL",
                option::OUTER_TTL.to_string(),
                "",
            ),
            (
                len,
                "OUTER_LEN_PLAIN",
                ipv4::HEADER_LEN.to_string(),
                "outer header alone",
            ),
            (
                len,
                "OUTER_LEN_WITH_OPTION",
                option::OUTER_HEADER_LEN.to_string(),
                "outer header and option",
            ),
            (
                bits_of(&opt, "opt_type"),
                "OPTION_TYPE",
                hex(option::OPTION_TYPE.into(), bits_of(&opt, "opt_type")),
                "",
            ),
            (
                bits_of(&opt, "opt_len"),
                "OPTION_LEN",
                option::OPTION_LEN.to_string(),
                "",
            ),
        ];
        for (bits, name, value, comment) in consts {
            let c = if comment.is_empty() {
                String::new()
            } else {
                format!("  // {comment}")
            };
            self.w
                .line(format!("const bit<{bits}> {name} = {value};{c}"));
        }
        if !self.is_tna() {
            self.w.line(format!(
                "const bit<32> BUCKETS = {};  // 2^k buckets per VIP: the hash modulus",
                self.p.buckets
            ));
        } else {
            self.w.line(format!(
                "const bit<32> COUNTED_FCS_BYTES = {TOFINO_COUNTED_FCS_BYTES};  \
                 // Tofino counts the FCS; count() subtracts this"
            ));
        }
        self.w.blank();
        self.w
            .line("// Drop reasons: the index of each reason's cell in the drop counter, and the");
        self.w
            .line("// precedence when several apply (the lowest index is counted).");
        self.w.line(format!(
            "typedef bit<{}> drop_reason_t;",
            drop_reason_bits()
        ));
        for r in DropReason::ALL {
            self.w.line(format!(
                "const drop_reason_t {} = {};",
                drop_const(r),
                r.index()
            ));
        }
        self.w.line(format!(
            "const bit<32> DROP_REASONS = {};",
            schema::DROPS.size
        ));
        self.w.blank();
    }

    fn headers(&mut self) {
        self.section("Headers");
        for h in layout::all() {
            self.w.open(format!("header {}", h.type_name));
            for f in &h.fields {
                self.w.line(format!("bit<{}> {};", f.bits, f.name));
            }
            self.w.close();
            self.w.blank();
        }
    }

    fn structs(&mut self) {
        let ip = layout::ipv4().type_name;
        let hdrs = [
            (
                layout::ethernet().type_name,
                H_ETHERNET,
                "rewritten by the route",
            ),
            (ip, H_OUTER_IPV4, "added by the mux: IP-in-IP"),
            (
                layout::beamer_option().type_name,
                H_OPTION,
                "added by the mux on the bucket path",
            ),
            (
                ip,
                H_IPV4,
                "as received; the inner header once encapsulated",
            ),
            (layout::tcp().type_name, H_TCP, ""),
            (layout::udp().type_name, H_UDP, ""),
        ];
        self.w.open("struct headers_t");
        for (ty, name, comment) in hdrs {
            let c = if comment.is_empty() {
                String::new()
            } else {
                format!("  // {comment}")
            };
            self.w.line(format!("{ty} {name};{c}"));
        }
        self.w.close();
        self.w.blank();
        self.w.open("struct metadata_t");
        for (bits, name, comment) in metadata_fields(self.p) {
            self.w.line(format!("bit<{bits}> {name};  // {comment}"));
        }
        self.w.line("drop_reason_t drop_reason;");
        self.w.close();
        self.w.blank();
        if self.is_tna() {
            self.w.line("struct egress_headers_t {}");
            self.w.line("struct egress_metadata_t {}");
            self.w.blank();
        }
    }

    fn parser(&mut self) {
        self.section("Parser");
        match self.t {
            Target::V1model => {
                self.w.open(
                    "parser BeamerParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,\n                    inout standard_metadata_t standard_metadata)",
                );
                self.w.open("state start");
                self.init_metadata();
                self.w.line("transition parse_ethernet;");
                self.w.close();
            }
            Target::Tna => {
                self.w.open(
                    "parser BeamerIngressParser(packet_in pkt, out headers_t hdr, out metadata_t meta,\n                           out ingress_intrinsic_metadata_t ig_intr_md)",
                );
                self.w.open("state start");
                self.w.line("pkt.extract(ig_intr_md);");
                self.w.line("pkt.advance(PORT_METADATA_SIZE);");
                self.w
                    .line("// Tofino does not zero metadata: every field is set here.");
                self.init_metadata();
                self.w.line("transition parse_ethernet;");
                self.w.close();
            }
        }
        self.w.blank();
        let w = &mut self.w;
        w.open("state parse_ethernet");
        w.line(format!("pkt.extract(hdr.{H_ETHERNET});"));
        w.open(format!("transition select(hdr.{H_ETHERNET}.ether_type)"));
        w.line("ETHERTYPE_IPV4: parse_ipv4;");
        w.line("default: accept;");
        w.close();
        w.close();
        w.blank();
        w.open("state parse_ipv4");
        w.line(format!("pkt.extract(hdr.{H_IPV4});"));
        w.line(format!("meta.route_dst = hdr.{H_IPV4}.dst_addr;"));
        w.line("// L4 is parsed for IPv4 without options that is not a fragment.");
        w.open(format!(
            "transition select(hdr.{H_IPV4}.version, hdr.{H_IPV4}.ihl, hdr.{H_IPV4}.flags_frag, hdr.{H_IPV4}.protocol)"
        ));
        let ff = bits_of(&layout::ipv4(), "flags_frag");
        w.line(format!(
            "(IPV4_VERSION, IHL_NO_OPTIONS, {ff}w0 &&& FRAGMENT_BITS, PROTO_TCP): parse_tcp;"
        ));
        w.line(format!(
            "(IPV4_VERSION, IHL_NO_OPTIONS, {ff}w0 &&& FRAGMENT_BITS, PROTO_UDP): parse_udp;"
        ));
        w.line("default: accept;");
        w.close();
        w.close();
        for (state, h) in [("parse_tcp", H_TCP), ("parse_udp", H_UDP)] {
            w.blank();
            w.open(format!("state {state}"));
            w.line(format!("pkt.extract(hdr.{h});"));
            w.line(format!("meta.l4_src_port = hdr.{h}.src_port;"));
            w.line(format!("meta.l4_dst_port = hdr.{h}.dst_port;"));
            w.line("transition accept;");
            w.close();
        }
        w.close();
        w.blank();
    }

    fn init_metadata(&mut self) {
        for (_, name, _) in metadata_fields(self.p) {
            self.w.line(format!("meta.{name} = 0;"));
        }
        self.w.line("meta.drop_reason = 0;");
    }

    fn v1model_verify_checksum(&mut self) {
        self.section("Checksum verification");
        self.w
            .line("// The received IPv4 checksum is not validated (the pipeline forwards");
        self.w
            .line("// what it receives; a routed packet gets a freshly computed checksum).");
        self.w
            .open("control BeamerVerifyChecksum(inout headers_t hdr, inout metadata_t meta)");
        self.w.line("apply { }");
        self.w.close();
        self.w.blank();
    }

    // ---- ingress --------------------------------------------------------

    fn ingress(&mut self) {
        self.section("Ingress");
        let c = schema::INGRESS_CONTROL;
        match self.t {
            Target::V1model => self.w.open(format!(
                "control {c}(inout headers_t hdr, inout metadata_t meta,\n{}inout standard_metadata_t standard_metadata)",
                " ".repeat(c.len() + 9)
            )),
            Target::Tna => {
                let pad = " ".repeat(c.len() + 9);
                self.w.open(format!(
                    "control {c}(inout headers_t hdr, inout metadata_t meta,\n\
                     {pad}in ingress_intrinsic_metadata_t ig_intr_md,\n\
                     {pad}in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,\n\
                     {pad}inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,\n\
                     {pad}inout ingress_intrinsic_metadata_for_tm_t ig_tm_md)"
                ));
            }
        }
        self.counters();
        if self.is_tna() {
            self.w
                .line("// CRC-32 as zlib computes it, pinned so no default can change it.");
            let reflected = CRC32_REFLECTED;
            self.w.line(format!(
                "Hash<bit<32>>(HashAlgorithm_t.CUSTOM, CRCPolynomial<bit<32>>(32w{}, {reflected}, false, false, 32w{}, 32w{})) bucket_hash;",
                hex(CRC32_POLY.into(), 32),
                hex(CRC32_INIT.into(), 32),
                hex(CRC32_XOR_OUT.into(), 32),
            ));
            self.w.blank();
        }
        for a in schema::ACTIONS {
            self.action(a);
        }
        for t in schema::TABLES {
            self.table(t);
        }
        self.ingress_apply();
        self.w.close();
        self.w.blank();
    }

    fn counters(&mut self) {
        let d = &schema::DROPS;
        self.w
            .line("// Drops, one cell per reason, counted once at the end of ingress.");
        self.w.line(format!(
            "@id({}) @name(\"{}\")",
            hex(d.id.into(), 32),
            d.name
        ));
        match self.t {
            Target::V1model => self.w.line(format!(
                "counter(DROP_REASONS, CounterType.packets_and_bytes) {};",
                d.name
            )),
            Target::Tna => self.w.line(format!(
                "Counter<bit<32>, drop_reason_t>(DROP_REASONS, CounterType_t.PACKETS_AND_BYTES) {};",
                d.name
            )),
        }
        for (c, t) in schema::DIRECT_COUNTERS {
            self.w.line(format!(
                "// Packets and bytes per entry of table {}.",
                t.name
            ));
            self.w.line(format!(
                "@id({}) @name(\"{}\")",
                hex(c.id.into(), 32),
                c.name
            ));
            match self.t {
                Target::V1model => self.w.line(format!(
                    "direct_counter(CounterType.packets_and_bytes) {};",
                    c.name
                )),
                Target::Tna => self.w.line(format!(
                    "DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) {};",
                    c.name
                )),
            }
        }
        self.w.blank();
    }

    /// A direct counter's count call, in each action of its table.
    fn count_direct(&self, c: &DirectCounter) -> String {
        match self.t {
            Target::V1model => format!("{}.count();", c.name),
            Target::Tna => format!("{}.count(COUNTED_FCS_BYTES);", c.name),
        }
    }

    fn drop_lines(reason: DropReason) -> [String; 2] {
        [
            "meta.drop = 1;".to_string(),
            format!("meta.drop_reason = {};", drop_const(reason)),
        ]
    }

    fn action(&mut self, a: &Action) {
        use schema::{forward, route, set_config, to_buckets, to_server};
        let params: Vec<String> = a
            .params
            .iter()
            .map(|p| format!("@id({}) bit<{}> {}", p.id, p.width.bits(self.p), p.name))
            .collect();
        let body: Vec<String> = if a.id == schema::TO_BUCKETS.id {
            vec![
                self.count_direct(&schema::VIP_COUNTER),
                "meta.to_buckets = 1;".into(),
                format!("meta.vip_id = {};", param(a, to_buckets::VIP_ID)),
            ]
        } else if a.id == schema::TO_SERVER.id {
            vec![
                self.count_direct(&schema::VIP_COUNTER),
                "meta.encap = 1;".into(),
                format!("meta.route_dst = {};", param(a, to_server::DIP)),
            ]
        } else if a.id == schema::VIP_MISS.id {
            vec![self.count_direct(&schema::VIP_COUNTER)]
        } else if a.id == schema::FORWARD.id {
            let o = format!("hdr.{H_OPTION}");
            vec![
                self.count_direct(&schema::BUCKET_COUNTER),
                "meta.encap = 1;".into(),
                format!("meta.route_dst = {};", param(a, forward::DIP)),
                format!("{o}.setValid();"),
                format!("{o}.opt_type = OPTION_TYPE;"),
                format!("{o}.opt_len = OPTION_LEN;"),
                format!("{o}.zero = 0;"),
                format!("{o}.prev_dip = {};", param(a, forward::PREV_DIP)),
                format!("{o}.change_time = {};", param(a, forward::CHANGE_TIME)),
                format!("{o}.generation = meta.generation;"),
            ]
        } else if a.id == schema::BUCKET_MISS.id {
            let mut v = vec![self.count_direct(&schema::BUCKET_COUNTER)];
            v.extend(Self::drop_lines(DropReason::BucketMiss));
            v
        } else if a.id == schema::ROUTE.id {
            let e = format!("hdr.{H_ETHERNET}");
            let port = param(a, route::PORT);
            let mut v = match self.t {
                Target::V1model => vec![format!("standard_metadata.egress_spec = {port};")],
                Target::Tna => vec![
                    format!("ig_tm_md.ucast_egress_port = {port};"),
                    "ig_tm_md.bypass_egress = 1;  // ingress-only program".into(),
                ],
            };
            v.extend([
                format!("{e}.dst_addr = {};", param(a, route::DST_MAC)),
                format!("{e}.src_addr = {};", param(a, route::SRC_MAC)),
                format!("{e}.ether_type = ETHERTYPE_IPV4;"),
            ]);
            v
        } else if a.id == schema::NO_ROUTE.id {
            Self::drop_lines(DropReason::NoRoute).to_vec()
        } else if a.id == schema::SET_CONFIG.id {
            vec![
                format!("meta.tunnel_src = {};", param(a, set_config::TUNNEL_SRC)),
                format!("meta.generation = {};", param(a, set_config::GENERATION)),
            ]
        } else {
            panic!("the generator does not know action {}", a.name)
        };
        self.w.line(format!(
            "@id({}) @name(\"{}\")",
            hex(a.id.into(), 32),
            a.name
        ));
        self.w
            .open(format!("action {}({})", a.name, params.join(", ")));
        for l in body {
            self.w.line(l);
        }
        self.w.close();
        self.w.blank();
    }

    fn table(&mut self, t: &Table) {
        self.w.line(format!(
            "@id({}) @name(\"{}\")",
            hex(t.id.into(), 32),
            t.name
        ));
        self.w.open(format!("table {}", t.name));
        if !t.keys.is_empty() {
            self.w.open("key =");
            for k in t.keys {
                let kind = match k.kind {
                    MatchKind::Exact => "exact",
                    MatchKind::Lpm => "lpm",
                };
                self.w.line(format!(
                    "{}: {kind} @id({}) @name(\"{}\");",
                    key_expr(t, k),
                    k.id,
                    k.name
                ));
            }
            self.w.close();
        }
        self.w.open("actions =");
        for ActionRef { action, scope } in t.actions {
            let anno = match scope {
                Scope::TableAndDefault => "",
                Scope::TableOnly => "@tableonly ",
                Scope::DefaultOnly => "@defaultonly ",
            };
            self.w.line(format!("{anno}{};", action.name));
        }
        self.w.close();
        let d = t.default_action;
        let args = vec!["0"; d.params.len()].join(", ");
        let konst = if t.const_default_action { "const " } else { "" };
        self.w
            .line(format!("{konst}default_action = {}({args});", d.name));
        if let Some(c) = t.direct_counter {
            self.w.line(format!("counters = {};", c.name));
        }
        self.w
            .line(format!("size = {};", self.p.table_size(t.size)));
        self.w.close();
        self.w.blank();
    }

    fn ingress_apply(&mut self) {
        let t = self.t;
        let ip = format!("hdr.{H_IPV4}");
        let w = &mut self.w;
        w.open("apply");
        w.line(format!("{}.apply();", schema::CONFIG.name));
        w.line("// Drop reasons in order of precedence.");
        match t {
            Target::V1model => {
                w.line("// bmv2 runs ingress after a parser error; a short header shows here.");
                w.open("if (standard_metadata.parser_error != error.NoError)");
            }
            Target::Tna => {
                w.line("// Reading the parser error lets errored packets (a short header shows");
                w.line("// as a partial-header error) reach ingress, where they are counted.");
                w.open("if (ig_prsr_md.parser_err != PARSER_ERROR_OK)");
            }
        }
        for l in Self::drop_lines(DropReason::Truncated) {
            w.line(l);
        }
        w.else_open(Some(&format!(
            "!{ip}.isValid() || {ip}.version != IPV4_VERSION"
        )));
        for l in Self::drop_lines(DropReason::NonIpv4) {
            w.line(l);
        }
        w.else_open(Some(&format!("{ip}.ihl != IHL_NO_OPTIONS")));
        for l in Self::drop_lines(DropReason::IpOptions) {
            w.line(l);
        }
        w.else_open(Some(&format!("({ip}.flags_frag & FRAGMENT_BITS) != 0")));
        for l in Self::drop_lines(DropReason::Fragment) {
            w.line(l);
        }
        w.else_open(None);
        w.line("// The bucket hash runs beside the VIP lookup; only to_buckets uses it.");
        match t {
            Target::V1model => w.line(format!(
                "hash(meta.bucket, HashAlgorithm.crc32, {}w0, {{ {ip}.src_addr, meta.l4_src_port }}, BUCKETS);",
                self.p.bucket_bits()
            )),
            Target::Tna => w.line(format!(
                "meta.bucket = (bit<{}>)bucket_hash.get({{ {ip}.src_addr, meta.l4_src_port }});",
                self.p.bucket_bits()
            )),
        }
        w.open(format!(
            "if (hdr.{H_TCP}.isValid() || hdr.{H_UDP}.isValid())"
        ));
        w.line(format!("{}.apply();", schema::VIP.name));
        w.close();
        w.open("if (meta.to_buckets == 1)");
        w.line(format!("{}.apply();", schema::BUCKETS.name));
        w.close();
        w.open("if (meta.drop == 0)");
        w.line("// TTL is checked only for packets routed without encapsulation.");
        w.open(format!("if (meta.encap == 0 && {ip}.ttl <= 1)"));
        for l in Self::drop_lines(DropReason::Ttl) {
            w.line(l);
        }
        w.else_open(None);
        w.line(format!("{}.apply();", schema::ROUTES.name));
        w.close();
        w.close();
        w.close();
        w.blank();
        w.open("if (meta.drop == 0)");
        w.open("if (meta.encap == 1)");
        w.line("// IP-in-IP: the outer header goes in front of the untouched inner packet.");
        let o = format!("hdr.{H_OUTER_IPV4}");
        for l in [
            format!("{o}.setValid();"),
            format!("{o}.version = IPV4_VERSION;"),
            format!("{o}.tos = 0;"),
            format!("{o}.identification = 0;"),
            format!("{o}.flags_frag = 0;"),
            format!("{o}.ttl = OUTER_TTL;"),
            format!("{o}.protocol = PROTO_IPIP;"),
            format!("{o}.hdr_checksum = 0;  // computed at deparse time"),
            format!("{o}.src_addr = meta.tunnel_src;"),
            format!("{o}.dst_addr = meta.route_dst;"),
        ] {
            w.line(l);
        }
        w.line("// Total length from the inner header's field, modulo 2^16.");
        w.open(format!("if (hdr.{H_OPTION}.isValid())"));
        w.line(format!("{o}.ihl = IHL_WITH_OPTION;"));
        w.line(format!(
            "{o}.total_len = {ip}.total_len + OUTER_LEN_WITH_OPTION;"
        ));
        w.else_open(None);
        w.line(format!("{o}.ihl = IHL_NO_OPTIONS;"));
        w.line(format!("{o}.total_len = {ip}.total_len + OUTER_LEN_PLAIN;"));
        w.close();
        w.else_open(None);
        w.line(format!("{ip}.ttl = {ip}.ttl - 1;"));
        w.line("meta.routed = 1;");
        w.close();
        w.else_open(None);
        match t {
            Target::V1model => {
                w.line("drops.count((bit<32>)meta.drop_reason);");
                w.line("mark_to_drop(standard_metadata);");
            }
            Target::Tna => {
                w.line("drops.count(meta.drop_reason, COUNTED_FCS_BYTES);");
                w.line("ig_dprsr_md.drop_ctl = 1;");
            }
        }
        w.close();
        w.close();
    }

    // ---- v1model tail -----------------------------------------------------

    fn v1model_egress(&mut self) {
        self.section("Egress");
        self.w.open(
            "control BeamerEgress(inout headers_t hdr, inout metadata_t meta,\n                     inout standard_metadata_t standard_metadata)",
        );
        self.w.line("apply { }");
        self.w.close();
        self.w.blank();
    }

    /// The fields of an IPv4 header in checksum order (all but the checksum).
    fn ipv4_checksum_fields(instance: &str) -> Vec<String> {
        layout::ipv4()
            .fields
            .iter()
            .filter(|f| f.name != "hdr_checksum")
            .map(|f| format!("hdr.{instance}.{}", f.name))
            .collect()
    }

    fn option_checksum_fields() -> Vec<String> {
        layout::beamer_option()
            .fields
            .iter()
            .map(|f| format!("hdr.{H_OPTION}.{}", f.name))
            .collect()
    }

    /// `{ a, b, ... }` over several lines (indented one level), followed by
    /// `tail`.
    fn field_list(w: &mut Writer, fields: &[String], tail: &str) {
        w.indent();
        w.open_raw("{");
        for (i, f) in fields.iter().enumerate() {
            let sep = if i + 1 == fields.len() { "" } else { "," };
            w.line(format!("{f}{sep}"));
        }
        w.close_with(tail);
        w.dedent();
    }

    /// A v1model `update_checksum` call.
    fn update_checksum(w: &mut Writer, cond: &str, fields: &[String], dest: &str) {
        w.line(format!("update_checksum({cond},"));
        Self::field_list(w, fields, ",");
        w.indent();
        w.line(format!("{dest}, HashAlgorithm.csum16);"));
        w.dedent();
    }

    fn v1model_compute_checksum(&mut self) {
        self.section("Checksum update");
        let outer = Self::ipv4_checksum_fields(H_OUTER_IPV4);
        let mut with_option = outer.clone();
        with_option.extend(Self::option_checksum_fields());
        let inner = Self::ipv4_checksum_fields(H_IPV4);
        let outer_sum = format!("hdr.{H_OUTER_IPV4}.hdr_checksum");
        let w = &mut self.w;
        w.open("control BeamerComputeChecksum(inout headers_t hdr, inout metadata_t meta)");
        w.open("apply");
        w.line("// The outer header's checksum covers the option when there is one.");
        Self::update_checksum(
            w,
            &format!("hdr.{H_OPTION}.isValid()"),
            &with_option,
            &outer_sum,
        );
        Self::update_checksum(
            w,
            &format!("hdr.{H_OUTER_IPV4}.isValid() && !hdr.{H_OPTION}.isValid()"),
            &outer,
            &outer_sum,
        );
        w.line("// A packet routed as is: TTL changed, checksum recomputed. An");
        w.line("// encapsulated inner header is left as received.");
        Self::update_checksum(
            w,
            "meta.routed == 1",
            &inner,
            &format!("hdr.{H_IPV4}.hdr_checksum"),
        );
        w.close();
        w.close();
        w.blank();
    }

    fn emits(w: &mut Writer) {
        for h in [H_ETHERNET, H_OUTER_IPV4, H_OPTION, H_IPV4, H_TCP, H_UDP] {
            w.line(format!("pkt.emit(hdr.{h});"));
        }
    }

    fn v1model_deparser(&mut self) {
        self.section("Deparser");
        let w = &mut self.w;
        w.open("control BeamerDeparser(packet_out pkt, in headers_t hdr)");
        w.open("apply");
        Self::emits(w);
        w.close();
        w.close();
        w.blank();
    }

    fn v1model_main(&mut self) {
        self.w.line(format!("@pkginfo(name=\"{PROGRAM_NAME}\")"));
        self.w.line(format!(
            "V1Switch(BeamerParser(), BeamerVerifyChecksum(), {}(), BeamerEgress(),\n         BeamerComputeChecksum(), BeamerDeparser()) main;",
            schema::INGRESS_CONTROL
        ));
    }

    // ---- TNA tail ---------------------------------------------------------

    fn tna_ingress_deparser(&mut self) {
        self.section("Ingress deparser");
        let mut outer = Self::ipv4_checksum_fields(H_OUTER_IPV4);
        outer.extend(Self::option_checksum_fields());
        let inner = Self::ipv4_checksum_fields(H_IPV4);
        let w = &mut self.w;
        w.open(
            "control BeamerIngressDeparser(packet_out pkt, inout headers_t hdr, in metadata_t meta,\n                              in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md)",
        );
        w.line("Checksum() outer_checksum;");
        w.line("Checksum() inner_checksum;");
        w.open("apply");
        w.line("// Fields of an invalid header do not enter a deparser checksum, so one");
        w.line("// checksum serves the outer header with and without the option.");
        w.line(format!(
            "hdr.{H_OUTER_IPV4}.hdr_checksum = outer_checksum.update("
        ));
        Self::field_list(w, &outer, ");");
        w.line("// A packet routed as is: TTL changed, checksum recomputed. An");
        w.line("// encapsulated inner header is left as received.");
        w.open("if (meta.routed == 1)");
        w.line(format!(
            "hdr.{H_IPV4}.hdr_checksum = inner_checksum.update("
        ));
        Self::field_list(w, &inner, ");");
        w.close();
        Self::emits(w);
        w.close();
        w.close();
        w.blank();
    }

    fn tna_egress(&mut self) {
        self.section("Egress (bypassed: the program is ingress only)");
        let w = &mut self.w;
        w.open(
            "parser BeamerEgressParser(packet_in pkt, out egress_headers_t hdr, out egress_metadata_t meta,\n                          out egress_intrinsic_metadata_t eg_intr_md)",
        );
        w.open("state start");
        w.line("pkt.extract(eg_intr_md);");
        w.line("transition accept;");
        w.close();
        w.close();
        w.blank();
        w.open(
            "control BeamerEgress(inout egress_headers_t hdr, inout egress_metadata_t meta,\n                     in egress_intrinsic_metadata_t eg_intr_md,\n                     in egress_intrinsic_metadata_from_parser_t eg_prsr_md,\n                     inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,\n                     inout egress_intrinsic_metadata_for_output_port_t eg_oport_md)",
        );
        w.line("apply { }");
        w.close();
        w.blank();
        w.open(
            "control BeamerEgressDeparser(packet_out pkt, inout egress_headers_t hdr, in egress_metadata_t meta,\n                             in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md)",
        );
        w.line("apply { }");
        w.close();
        w.blank();
    }

    fn tna_main(&mut self) {
        self.w.line(format!(
            "Pipeline(BeamerIngressParser(), {}(), BeamerIngressDeparser(),\n         BeamerEgressParser(), BeamerEgress(), BeamerEgressDeparser()) {};",
            schema::INGRESS_CONTROL,
            schema::TNA_PIPE
        ));
        self.w.blank();
        self.w.line(format!("@pkginfo(name=\"{PROGRAM_NAME}\")"));
        self.w.line(format!("Switch({}) main;", schema::TNA_PIPE));
    }
}
