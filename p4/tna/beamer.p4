// GENERATED FILE. Do not edit: regenerate with
//   beamer gen --target tna --buckets 65536 --max-vips 2 --max-vip-entries 1024 --routes 1024 --out <dir>
// from the pipeline definition in the beamer-pipeline crate.
//
// Beamer mux, P4_16 for TNA (Tofino, compiled by bf-p4c).
// Parse Ethernet/IPv4/TCP/UDP; drop and count truncated, non-IPv4,
// options and fragments; VIP table; bucket = low k bits of CRC-32 over
// (IPv4 source, L4 source port); bucket table; IP-in-IP encapsulation
// with the 16-byte Beamer option (bucket path) or without (per-server
// port); LPM route on the (outer) destination; per-entry and per-drop
// counters.

#include <core.p4>
#include <tna.p4>

// ---- Constants, from beamer-pipeline ----

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<4> IPV4_VERSION = 4;
const bit<4> IHL_NO_OPTIONS = 5;  // 20-byte header
const bit<4> IHL_WITH_OPTION = 9;  // 20-byte header and the 16-byte option
const bit<8> PROTO_IPIP = 4;
const bit<8> PROTO_TCP = 6;
const bit<8> PROTO_UDP = 17;
const bit<16> FRAGMENT_BITS = 0x3fff;  // MF flag and fragment offset; the reserved flag is ignored
const bit<8> OUTER_TTL = 64;
const bit<16> OUTER_LEN_PLAIN = 20;  // outer header alone
const bit<16> OUTER_LEN_WITH_OPTION = 36;  // outer header and option
const bit<8> OPTION_TYPE = 0x61;
const bit<8> OPTION_LEN = 16;
const bit<32> COUNTED_FCS_BYTES = 4;  // Tofino counts the FCS; count() subtracts this

// Drop reasons: the index of each reason's cell in the drop counter, and the
// precedence when several apply (the lowest index is counted).
typedef bit<3> drop_reason_t;
const drop_reason_t DROP_TRUNCATED = 0;
const drop_reason_t DROP_NON_IPV4 = 1;
const drop_reason_t DROP_IP_OPTIONS = 2;
const drop_reason_t DROP_FRAGMENT = 3;
const drop_reason_t DROP_BUCKET_MISS = 4;
const drop_reason_t DROP_TTL = 5;
const drop_reason_t DROP_NO_ROUTE = 6;
const bit<32> DROP_REASONS = 7;

// ---- Headers ----

header ethernet_h {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header ipv4_h {
    bit<4> version;
    bit<4> ihl;
    bit<8> tos;
    bit<16> total_len;
    bit<16> identification;
    bit<16> flags_frag;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

header beamer_option_h {
    bit<8> opt_type;
    bit<8> opt_len;
    bit<16> zero;
    bit<32> prev_dip;
    bit<32> change_time;
    bit<32> generation;
}

header tcp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4> data_offset;
    bit<4> res;
    bit<8> flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

struct headers_t {
    ethernet_h ethernet;  // rewritten by the route
    ipv4_h outer_ipv4;  // added by the mux: IP-in-IP
    beamer_option_h beamer_option;  // added by the mux on the bucket path
    ipv4_h ipv4;  // as received; the inner header once encapsulated
    tcp_h tcp;
    udp_h udp;
}

struct metadata_t {
    bit<16> l4_src_port;  // TCP/UDP source port: hash input
    bit<16> l4_dst_port;  // TCP/UDP destination port: VIP key
    bit<16> vip_id;  // bucket set of the VIP entry hit
    bit<16> bucket;  // low k bits of the CRC-32 of (source address, source port)
    bit<32> route_dst;  // route key: the IPv4 destination, the DIP once encapsulated
    bit<32> tunnel_src;  // from the config table
    bit<32> generation;  // from the config table
    bit<1> to_buckets;  // the VIP entry says: look up the buckets
    bit<1> encap;  // the packet leaves IP-in-IP
    bit<1> routed;  // routed as is: TTL decremented, checksum recomputed
    bit<1> drop;  // the packet is dropped and counted
    drop_reason_t drop_reason;
}

struct egress_headers_t {}
struct egress_metadata_t {}

// ---- Parser ----

parser BeamerIngressParser(packet_in pkt, out headers_t hdr, out metadata_t meta,
                           out ingress_intrinsic_metadata_t ig_intr_md) {
    state start {
        pkt.extract(ig_intr_md);
        pkt.advance(PORT_METADATA_SIZE);
        // Tofino does not zero metadata: every field is set here.
        meta.l4_src_port = 0;
        meta.l4_dst_port = 0;
        meta.vip_id = 0;
        meta.bucket = 0;
        meta.route_dst = 0;
        meta.tunnel_src = 0;
        meta.generation = 0;
        meta.to_buckets = 0;
        meta.encap = 0;
        meta.routed = 0;
        meta.drop = 0;
        meta.drop_reason = 0;
        transition parse_ethernet;
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        meta.route_dst = hdr.ipv4.dst_addr;
        // L4 is parsed for IPv4 without options that is not a fragment.
        transition select(hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.flags_frag, hdr.ipv4.protocol) {
            (IPV4_VERSION, IHL_NO_OPTIONS, 16w0 &&& FRAGMENT_BITS, PROTO_TCP): parse_tcp;
            (IPV4_VERSION, IHL_NO_OPTIONS, 16w0 &&& FRAGMENT_BITS, PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        pkt.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition accept;
    }
}

// ---- Ingress ----

control BeamerIngress(inout headers_t hdr, inout metadata_t meta,
                      in ingress_intrinsic_metadata_t ig_intr_md,
                      in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                      inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                      inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    // Drops, one cell per reason, counted once at the end of ingress.
    @id(0x12000001) @name("drops")
    Counter<bit<32>, drop_reason_t>(DROP_REASONS, CounterType_t.PACKETS_AND_BYTES) drops;
    // Packets and bytes per entry of table vip.
    @id(0x13000001) @name("vip_counter")
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) vip_counter;
    // Packets and bytes per entry of table buckets.
    @id(0x13000002) @name("bucket_counter")
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) bucket_counter;

    // CRC-32 as zlib computes it, pinned so no default can change it.
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, CRCPolynomial<bit<32>>(32w0x04c11db7, true, false, false, 32w0xffffffff, 32w0xffffffff)) bucket_hash;

    @id(0x01000001) @name("to_buckets")
    action to_buckets(@id(1) bit<16> vip_id) {
        vip_counter.count(COUNTED_FCS_BYTES);
        meta.to_buckets = 1;
        meta.vip_id = vip_id;
    }

    @id(0x01000002) @name("to_server")
    action to_server(@id(1) bit<32> dip) {
        vip_counter.count(COUNTED_FCS_BYTES);
        meta.encap = 1;
        meta.route_dst = dip;
    }

    @id(0x01000003) @name("vip_miss")
    action vip_miss() {
        vip_counter.count(COUNTED_FCS_BYTES);
    }

    @id(0x01000004) @name("forward")
    action forward(@id(1) bit<32> dip, @id(2) bit<32> prev_dip, @id(3) bit<32> change_time) {
        bucket_counter.count(COUNTED_FCS_BYTES);
        meta.encap = 1;
        meta.route_dst = dip;
        hdr.beamer_option.setValid();
        hdr.beamer_option.opt_type = OPTION_TYPE;
        hdr.beamer_option.opt_len = OPTION_LEN;
        hdr.beamer_option.zero = 0;
        hdr.beamer_option.prev_dip = prev_dip;
        hdr.beamer_option.change_time = change_time;
        hdr.beamer_option.generation = meta.generation;
    }

    @id(0x01000005) @name("bucket_miss")
    action bucket_miss() {
        bucket_counter.count(COUNTED_FCS_BYTES);
        meta.drop = 1;
        meta.drop_reason = DROP_BUCKET_MISS;
    }

    @id(0x01000006) @name("route")
    action route(@id(1) bit<9> port, @id(2) bit<48> dst_mac, @id(3) bit<48> src_mac) {
        ig_tm_md.ucast_egress_port = port;
        ig_tm_md.bypass_egress = 1;  // ingress-only program
        hdr.ethernet.dst_addr = dst_mac;
        hdr.ethernet.src_addr = src_mac;
        hdr.ethernet.ether_type = ETHERTYPE_IPV4;
    }

    @id(0x01000007) @name("no_route")
    action no_route() {
        meta.drop = 1;
        meta.drop_reason = DROP_NO_ROUTE;
    }

    @id(0x01000008) @name("set_config")
    action set_config(@id(1) bit<32> tunnel_src, @id(2) bit<32> generation) {
        meta.tunnel_src = tunnel_src;
        meta.generation = generation;
    }

    @id(0x02000001) @name("vip")
    table vip {
        key = {
            hdr.ipv4.dst_addr: exact @id(1) @name("dst_addr");
            hdr.ipv4.protocol: exact @id(2) @name("protocol");
            meta.l4_dst_port: exact @id(3) @name("dst_port");
        }
        actions = {
            @tableonly to_buckets;
            @tableonly to_server;
            @defaultonly vip_miss;
        }
        const default_action = vip_miss();
        counters = vip_counter;
        size = 1024;
    }

    @id(0x02000002) @name("buckets")
    table buckets {
        key = {
            meta.vip_id: exact @id(1) @name("vip_id");
            meta.bucket: exact @id(2) @name("bucket");
        }
        actions = {
            @tableonly forward;
            @defaultonly bucket_miss;
        }
        const default_action = bucket_miss();
        counters = bucket_counter;
        size = 131072;
    }

    @id(0x02000003) @name("routes")
    table routes {
        key = {
            meta.route_dst: lpm @id(1) @name("dst_addr");
        }
        actions = {
            @tableonly route;
            @defaultonly no_route;
        }
        const default_action = no_route();
        size = 1024;
    }

    @id(0x02000004) @name("config")
    table config {
        actions = {
            @defaultonly set_config;
        }
        default_action = set_config(0, 0);
        size = 1;
    }

    apply {
        config.apply();
        // Drop reasons in order of precedence.
        // Reading the parser error lets errored packets (a short header shows
        // as a partial-header error) reach ingress, where they are counted.
        if (ig_prsr_md.parser_err != PARSER_ERROR_OK) {
            meta.drop = 1;
            meta.drop_reason = DROP_TRUNCATED;
        } else if (!hdr.ipv4.isValid() || hdr.ipv4.version != IPV4_VERSION) {
            meta.drop = 1;
            meta.drop_reason = DROP_NON_IPV4;
        } else if (hdr.ipv4.ihl != IHL_NO_OPTIONS) {
            meta.drop = 1;
            meta.drop_reason = DROP_IP_OPTIONS;
        } else if ((hdr.ipv4.flags_frag & FRAGMENT_BITS) != 0) {
            meta.drop = 1;
            meta.drop_reason = DROP_FRAGMENT;
        } else {
            // The bucket hash runs beside the VIP lookup; only to_buckets uses it.
            meta.bucket = (bit<16>)bucket_hash.get({ hdr.ipv4.src_addr, meta.l4_src_port });
            if (hdr.tcp.isValid() || hdr.udp.isValid()) {
                vip.apply();
            }
            if (meta.to_buckets == 1) {
                buckets.apply();
            }
            if (meta.drop == 0) {
                // TTL is checked only for packets routed without encapsulation.
                if (meta.encap == 0 && hdr.ipv4.ttl <= 1) {
                    meta.drop = 1;
                    meta.drop_reason = DROP_TTL;
                } else {
                    routes.apply();
                }
            }
        }

        if (meta.drop == 0) {
            if (meta.encap == 1) {
                // IP-in-IP: the outer header goes in front of the untouched inner packet.
                hdr.outer_ipv4.setValid();
                hdr.outer_ipv4.version = IPV4_VERSION;
                hdr.outer_ipv4.tos = 0;
                hdr.outer_ipv4.identification = 0;
                hdr.outer_ipv4.flags_frag = 0;
                hdr.outer_ipv4.ttl = OUTER_TTL;
                hdr.outer_ipv4.protocol = PROTO_IPIP;
                hdr.outer_ipv4.hdr_checksum = 0;  // computed at deparse time
                hdr.outer_ipv4.src_addr = meta.tunnel_src;
                hdr.outer_ipv4.dst_addr = meta.route_dst;
                // Total length from the inner header's field, modulo 2^16.
                if (hdr.beamer_option.isValid()) {
                    hdr.outer_ipv4.ihl = IHL_WITH_OPTION;
                    hdr.outer_ipv4.total_len = hdr.ipv4.total_len + OUTER_LEN_WITH_OPTION;
                } else {
                    hdr.outer_ipv4.ihl = IHL_NO_OPTIONS;
                    hdr.outer_ipv4.total_len = hdr.ipv4.total_len + OUTER_LEN_PLAIN;
                }
            } else {
                hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
                meta.routed = 1;
            }
        } else {
            drops.count(meta.drop_reason, COUNTED_FCS_BYTES);
            ig_dprsr_md.drop_ctl = 1;
        }
    }
}

// ---- Ingress deparser ----

control BeamerIngressDeparser(packet_out pkt, inout headers_t hdr, in metadata_t meta,
                              in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Checksum() outer_checksum;
    Checksum() inner_checksum;
    apply {
        // Fields of an invalid header do not enter a deparser checksum, so one
        // checksum serves the outer header with and without the option.
        hdr.outer_ipv4.hdr_checksum = outer_checksum.update(
            {
                hdr.outer_ipv4.version,
                hdr.outer_ipv4.ihl,
                hdr.outer_ipv4.tos,
                hdr.outer_ipv4.total_len,
                hdr.outer_ipv4.identification,
                hdr.outer_ipv4.flags_frag,
                hdr.outer_ipv4.ttl,
                hdr.outer_ipv4.protocol,
                hdr.outer_ipv4.src_addr,
                hdr.outer_ipv4.dst_addr,
                hdr.beamer_option.opt_type,
                hdr.beamer_option.opt_len,
                hdr.beamer_option.zero,
                hdr.beamer_option.prev_dip,
                hdr.beamer_option.change_time,
                hdr.beamer_option.generation
            });
        // A packet routed as is: TTL changed, checksum recomputed. An
        // encapsulated inner header is left as received.
        if (meta.routed == 1) {
            hdr.ipv4.hdr_checksum = inner_checksum.update(
                {
                    hdr.ipv4.version,
                    hdr.ipv4.ihl,
                    hdr.ipv4.tos,
                    hdr.ipv4.total_len,
                    hdr.ipv4.identification,
                    hdr.ipv4.flags_frag,
                    hdr.ipv4.ttl,
                    hdr.ipv4.protocol,
                    hdr.ipv4.src_addr,
                    hdr.ipv4.dst_addr
                });
        }
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.outer_ipv4);
        pkt.emit(hdr.beamer_option);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
    }
}

// ---- Egress (bypassed: the program is ingress only) ----

parser BeamerEgressParser(packet_in pkt, out egress_headers_t hdr, out egress_metadata_t meta,
                          out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        pkt.extract(eg_intr_md);
        transition accept;
    }
}

control BeamerEgress(inout egress_headers_t hdr, inout egress_metadata_t meta,
                     in egress_intrinsic_metadata_t eg_intr_md,
                     in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                     inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                     inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    apply { }
}

control BeamerEgressDeparser(packet_out pkt, inout egress_headers_t hdr, in egress_metadata_t meta,
                             in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    apply { }
}

Pipeline(BeamerIngressParser(), BeamerIngress(), BeamerIngressDeparser(),
         BeamerEgressParser(), BeamerEgress(), BeamerEgressDeparser()) pipe;

@pkginfo(name="beamer")
Switch(pipe) main;
