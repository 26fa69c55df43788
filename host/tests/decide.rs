//! The daisy-chain decision, rule by rule, with a virtual clock.
//!
//! Addresses used throughout:
//! ```text
//!   client 198.51.100.7:40000 ──> VIP 10.0.0.100:80
//!   mux tunnel source 10.9.0.1
//!   servers A 10.1.0.1, B 10.1.0.2, C 10.1.0.3 (per-server ports 20001..3)
//! ```

use beamer_host::craft::{OptionFields, TcpSegment, encapsulate, udp_datagram};
use beamer_host::{Discard, Flow, Host, HostConfig, LocalReason, Time, Verdict};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN};
use beamer_pipeline::wire::{BeamerOption, Ipv4Packet};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const MUX: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const C: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 3);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const NONE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
const BITS: u8 = 8;
/// A moment when buckets change, and the daisy timeout (the default).
const T0: u32 = 1_700_000_000;
const TIMEOUT: u32 = beamer_host::DEFAULT_DAISY_TIMEOUT_SECS;

fn host(dip: Ipv4Addr) -> Host {
    let mut cfg = HostConfig::new(dip, vec![VIP], vec![MUX], BITS);
    cfg.server_ports = vec![server_port(dip)];
    cfg.daisy_timeout_secs = TIMEOUT;
    Host::new(cfg).expect("valid config")
}

fn server_port(dip: Ipv4Addr) -> u16 {
    20000 + u16::from(dip.octets()[3])
}

fn at(secs: u32) -> Time {
    Time::from_unix_secs(secs)
}

fn flow(port: u16) -> Flow {
    Flow {
        client: CLIENT,
        client_port: port,
        vip: VIP,
        vip_port: 80,
    }
}

fn seg(f: Flow, flags: u8, seq: u32) -> Vec<u8> {
    TcpSegment {
        src: f.client,
        src_port: f.client_port,
        dst: f.vip,
        dst_port: f.vip_port,
        seq,
        ack: 1,
        flags,
        payload: b"data".to_vec(),
    }
    .to_ipv4()
}

fn opt(prev_dip: Ipv4Addr, change_time: u32, generation: u32) -> Option<OptionFields> {
    Some(OptionFields {
        prev_dip,
        change_time,
        generation,
    })
}

/// An encapsulated packet from the mux to `dip`.
fn from_mux(dip: Ipv4Addr, inner: &[u8], o: Option<OptionFields>) -> Vec<u8> {
    encapsulate(inner, MUX, dip, o)
}

fn local(reason: LocalReason, pkt: &[u8]) -> Verdict {
    let hl = Ipv4Packet::new_checked(pkt).unwrap().header_len();
    Verdict::Local {
        reason,
        inner: hl..pkt.len(),
    }
}

fn no_conns() -> HashSet<Flow> {
    HashSet::new()
}

/// Teaches `h` that its bucket of `f` came from `prev` at `change`, with a
/// packet of another connection that is local.
fn teach(h: &mut Host, dip: Ipv4Addr, f: Flow, prev: Ipv4Addr, change: u32, generation: u32) {
    let mut p = from_mux(dip, &seg(f, TCP_SYN, 0), opt(prev, change, generation));
    let v = h.handle(&mut p, at(change), &mut no_conns());
    assert!(matches!(v, Verdict::Local { .. }), "teaching packet: {v:?}");
}

#[test]
fn the_five_rules_in_order() {
    // Each case: B learned that the bucket came from A at T0 (generation
    // 5), then gets one packet; the packet's option, flags, the local sockets,
    // the time and the expected verdict.
    struct Case {
        what: &'static str,
        flags: u8,
        option: Option<OptionFields>,
        local_socket: bool,
        now: u32,
        expect: Expect,
    }
    enum Expect {
        Local(LocalReason),
        ForwardTo(Ipv4Addr),
        Drop(Discard),
    }
    use Expect::*;
    let current = opt(A, T0, 5);
    let stale = opt(A, T0, 4);
    let cases = [
        Case {
            what: "1: a SYN goes local even with a young previous DIP",
            flags: TCP_SYN,
            option: current,
            local_socket: false,
            now: T0 + 1,
            expect: Local(LocalReason::Syn),
        },
        Case {
            what: "1: a SYN goes local even from a stale mux",
            flags: TCP_SYN,
            option: stale,
            local_socket: false,
            now: T0 + 1,
            expect: Local(LocalReason::Syn),
        },
        Case {
            what: "2: a packet of a local connection goes local",
            flags: TCP_ACK | TCP_PSH,
            option: current,
            local_socket: true,
            now: T0 + 1,
            expect: Local(LocalReason::Connection),
        },
        Case {
            what: "2: a local connection wins over a stale generation",
            flags: TCP_ACK,
            option: stale,
            local_socket: true,
            now: T0 + 1,
            expect: Local(LocalReason::Connection),
        },
        Case {
            what: "3: no socket, young previous DIP: chained to A",
            flags: TCP_ACK | TCP_PSH,
            option: current,
            local_socket: false,
            now: T0 + 1,
            expect: ForwardTo(A),
        },
        Case {
            what: "3: a SYN-ACK is not a SYN: chained",
            flags: TCP_SYN | TCP_ACK,
            option: current,
            local_socket: false,
            now: T0 + 1,
            expect: ForwardTo(A),
        },
        Case {
            what: "3: a RST is chained so the old connection is reset where it lives",
            flags: TCP_RST,
            option: current,
            local_socket: false,
            now: T0 + 1,
            expect: ForwardTo(A),
        },
        Case {
            what: "3 before 4: chained even from a stale mux",
            flags: TCP_ACK,
            option: stale,
            local_socket: false,
            now: T0 + 1,
            expect: ForwardTo(A),
        },
        Case {
            what: "3: one second before the timeout still chains",
            flags: TCP_ACK,
            option: current,
            local_socket: false,
            now: T0 + TIMEOUT - 1,
            expect: ForwardTo(A),
        },
        Case {
            what: "4: expired previous DIP and stale mux: dropped",
            flags: TCP_ACK,
            option: stale,
            local_socket: false,
            now: T0 + TIMEOUT,
            expect: Drop(Discard::StaleGeneration),
        },
        Case {
            what: "5: expired previous DIP, current mux: local (RST), no lookup",
            flags: TCP_ACK | TCP_FIN,
            option: current,
            local_socket: false,
            now: T0 + TIMEOUT,
            expect: Local(LocalReason::Stable),
        },
    ];
    for c in cases {
        let mut b = host(B);
        // f and g share a bucket; g's SYN teaches B where it came from.
        let (f, g) = same_bucket_pair(&b);
        teach(&mut b, B, g, A, T0, 5);
        // The current mux keeps sending generation 5.
        let mut beat = from_mux(B, &seg(flow(1), TCP_SYN, 0), opt(NONE, 0, 5));
        b.handle(&mut beat, at(c.now), &mut no_conns());
        let mut conns = no_conns();
        if c.local_socket {
            conns.insert(f);
        }
        let mut p = from_mux(B, &seg(f, c.flags, 1000), c.option);
        let orig = p.clone();
        let v = b.handle(&mut p, at(c.now), &mut conns);
        match c.expect {
            Local(r) => assert_eq!(v, local(r, &orig), "{}", c.what),
            ForwardTo(to) => {
                assert_eq!(v, Verdict::Forward { to }, "{}", c.what);
                assert_chained(&orig, &p, to);
            }
            Drop(d) => assert_eq!(v, Verdict::Drop(d), "{}", c.what),
        }
    }
}

/// Two flows of the same client in one bucket.
fn same_bucket_pair(h: &Host) -> (Flow, Flow) {
    let b0 = h.bucket_of(CLIENT, 1000);
    let p = (1001..)
        .find(|p| h.bucket_of(CLIENT, *p) == b0)
        .expect("some port shares the bucket");
    (flow(1000), flow(p))
}

/// The forwarded packet is the original with, in the outer header only:
/// destination = `to`, TTL - 1, change time 0, and a valid checksum.
fn assert_chained(orig: &[u8], fwd: &[u8], to: Ipv4Addr) {
    assert_eq!(orig.len(), fwd.len());
    let o = Ipv4Packet::new_checked(orig).unwrap();
    let f = Ipv4Packet::new_checked(fwd).unwrap();
    assert_eq!(f.dst(), to);
    assert_eq!(f.src(), o.src(), "the outer source stays the tunnel source");
    assert_eq!(f.ttl(), o.ttl() - 1);
    assert!(f.checksum_ok());
    let oo = BeamerOption::new_validated(o.options()).unwrap();
    let fo = BeamerOption::new_validated(f.options()).unwrap();
    assert_eq!(fo.change_time(), 0);
    assert_eq!(fo.prev_dip(), oo.prev_dip());
    assert_eq!(fo.generation(), oo.generation());
    // Everything but TTL, checksum, destination and change time is equal.
    let mut a = orig.to_vec();
    let mut b = fwd.to_vec();
    for buf in [&mut a, &mut b] {
        buf[8] = 0;
        buf[10..12].fill(0);
        buf[16..20].fill(0);
        buf[28..32].fill(0);
    }
    assert_eq!(a, b);
}

#[test]
fn the_forwarded_bytes() {
    // A chained packet, byte for byte: only TTL, checksum, destination and
    // change time differ from what the mux sent.
    let mut b = host(B);
    let (f, g) = same_bucket_pair(&b);
    teach(&mut b, B, g, A, T0, 5);
    let mut p = from_mux(B, &seg(f, TCP_ACK, 7), opt(A, T0, 5));
    assert_eq!(
        &p[..36],
        &[
            0x49, 0, 0, 80, 0, 0, 0, 0, 64, 4, p[10], p[11], 10, 9, 0, 1, 10, 1, 0, 2, //
            0x61, 16, 0, 0, 10, 1, 0, 1, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 5,
        ][..]
    );
    assert_eq!(
        b.handle(&mut p, at(T0 + 3), &mut no_conns()),
        Verdict::Forward { to: A }
    );
    let sum = u16::from_be_bytes([p[10], p[11]]);
    assert_eq!(
        &p[..36],
        &[
            0x49, 0, 0, 80, 0, 0, 0, 0, 63, 4, p[10], p[11], 10, 9, 0, 1, 10, 1, 0, 1, //
            0x61, 16, 0, 0, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5,
        ][..]
    );
    assert_eq!(
        beamer_pipeline::wire::internet_checksum(&p[..36]),
        0,
        "checksum {sum:#06x} verifies"
    );
}

#[test]
fn a_syn_cookie_ack_goes_local() {
    // The SYN of flow f came here and the kernel answered with a cookie, so
    // it keeps no socket: the third ACK (seq = ISN + 1) must still go local,
    // not to the previous DIP. Another ACK of the same 4-tuple with another
    // sequence number is not that ACK.
    let mut b = host(B);
    let (f, g) = same_bucket_pair(&b);
    teach(&mut b, B, g, A, T0, 5);
    let isn = 0xffff_fff0;
    let mut syn = from_mux(B, &seg(f, TCP_SYN, isn), opt(A, T0, 5));
    assert!(matches!(
        b.handle(&mut syn, at(T0 + 1), &mut no_conns()),
        Verdict::Local {
            reason: LocalReason::Syn,
            ..
        }
    ));
    let mut ack = from_mux(B, &seg(f, TCP_ACK, isn.wrapping_add(1)), opt(A, T0, 5));
    let orig = ack.clone();
    assert_eq!(
        b.handle(&mut ack, at(T0 + 2), &mut no_conns()),
        local(LocalReason::Handshake, &orig)
    );
    let mut other = from_mux(B, &seg(f, TCP_ACK, isn.wrapping_add(100)), opt(A, T0, 5));
    assert_eq!(
        b.handle(&mut other, at(T0 + 2), &mut no_conns()),
        Verdict::Forward { to: A }
    );
}

#[test]
fn learning_rules() {
    let mut h = host(B);
    let (f, g) = same_bucket_pair(&h);
    let bucket = h.bucket_of(CLIENT, f.client_port);
    let learned = |h: &Host| h.learned(VIP, bucket).map(|l| (l.prev_dip, l.change_time));
    struct Step {
        what: &'static str,
        option: Option<OptionFields>,
        expect: Option<(Ipv4Addr, u32)>,
    }
    let steps = [
        Step {
            what: "no previous DIP: nothing to learn",
            option: opt(NONE, 0, 1),
            expect: None,
        },
        Step {
            what: "previous DIP = this host: not learned",
            option: opt(B, T0 - 50, 2),
            expect: None,
        },
        Step {
            what: "a chained packet (change time 0): not learned",
            option: opt(C, 0, 2),
            expect: None,
        },
        Step {
            what: "first real change: learned",
            option: opt(A, T0, 3),
            expect: Some((A, T0)),
        },
        Step {
            what: "an older change (a stale mux): ignored",
            option: opt(C, T0 - 10, 2),
            expect: Some((A, T0)),
        },
        Step {
            what: "the same change again: nothing new",
            option: opt(C, T0, 3),
            expect: Some((A, T0)),
        },
        Step {
            what: "a newer change: replaces",
            option: opt(C, T0 + 5, 4),
            expect: Some((C, T0 + 5)),
        },
    ];
    for s in steps {
        let mut p = from_mux(B, &seg(g, TCP_SYN, 0), s.option);
        h.handle(&mut p, at(T0 + 6), &mut no_conns());
        assert_eq!(learned(&h), s.expect, "{}", s.what);
    }
    assert_eq!(
        h.counters().learned,
        2,
        "the first change and the newer one"
    );
    assert_eq!(h.newest_generation(), 4);
    // Packets for other buckets learned nothing.
    let other = (0..1u32 << BITS).filter(|b| *b != bucket);
    assert!(other.into_iter().all(|b| h.learned(VIP, b).is_none()));
}

#[test]
fn stale_generation_is_tracked_across_buckets() {
    // Generation 9 seen on any bucket makes generation 8 stale everywhere.
    let mut h = host(B);
    let mut p = from_mux(B, &seg(flow(1), TCP_SYN, 0), opt(NONE, 0, 9));
    h.handle(&mut p, at(T0), &mut no_conns());
    let (f, _) = same_bucket_pair(&h);
    let mut old = from_mux(B, &seg(f, TCP_ACK, 5), opt(NONE, 0, 8));
    assert_eq!(
        h.handle(&mut old, at(T0), &mut no_conns()),
        Verdict::Drop(Discard::StaleGeneration)
    );
    // The same packet from a current mux goes to the stack (RST).
    let mut cur = from_mux(B, &seg(f, TCP_ACK, 5), opt(NONE, 0, 9));
    let orig = cur.clone();
    assert_eq!(
        h.handle(&mut cur, at(T0), &mut no_conns()),
        local(LocalReason::Stable, &orig)
    );
    // A stale packet of a connection that is here still goes local.
    let mut conns = HashSet::from([f]);
    let mut mine = from_mux(B, &seg(f, TCP_ACK, 5), opt(NONE, 0, 8));
    let orig = mine.clone();
    assert_eq!(
        h.handle(&mut mine, at(T0), &mut conns),
        local(LocalReason::Connection, &orig)
    );
    assert_eq!(
        h.counters().lookups,
        2,
        "the stable packet needed no lookup"
    );
}

#[test]
fn per_server_port_always_local() {
    let mut b = host(B);
    let (f, g) = same_bucket_pair(&b);
    teach(&mut b, B, g, A, T0, 5);
    let sub = Flow {
        vip_port: server_port(B),
        ..f
    };
    // The per-server path: IHL 5, no option. An MPTCP MP_JOIN SYN and the
    // rest of the subflow.
    for flags in [TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_RST] {
        let mut p = from_mux(B, &seg(sub, flags, 1), None);
        let orig = p.clone();
        assert_eq!(p[0], 0x45);
        assert_eq!(
            b.handle(&mut p, at(T0 + 1), &mut no_conns()),
            local(LocalReason::ServerPort, &orig)
        );
        // Even with an option, young previous DIP and a stale generation.
        let mut p = from_mux(B, &seg(sub, flags, 1), opt(A, T0, 1));
        let orig = p.clone();
        assert_eq!(
            b.handle(&mut p, at(T0 + 1), &mut no_conns()),
            local(LocalReason::ServerPort, &orig)
        );
    }
    // Another server's port without an option is not for this host.
    let theirs = Flow {
        vip_port: server_port(A),
        ..f
    };
    let mut p = from_mux(B, &seg(theirs, TCP_SYN, 1), None);
    assert_eq!(
        b.handle(&mut p, at(T0 + 1), &mut no_conns()),
        Verdict::Drop(Discard::NoOption)
    );
    assert_eq!(b.counters().lookups, 0);
}

#[test]
fn udp_and_chaining_off_go_local() {
    let mut b = host(B);
    let (f, g) = same_bucket_pair(&b);
    teach(&mut b, B, g, A, T0, 5);
    let dns = udp_datagram(CLIENT, f.client_port, VIP, 53, b"q");
    let mut p = from_mux(B, &dns, opt(A, T0, 5));
    let orig = p.clone();
    assert_eq!(
        b.handle(&mut p, at(T0 + 1), &mut no_conns()),
        local(LocalReason::Udp, &orig)
    );
    b.set_chaining(false);
    let mut p = from_mux(B, &seg(f, TCP_ACK, 9), opt(A, T0, 1));
    let orig = p.clone();
    assert_eq!(
        b.handle(&mut p, at(T0 + 1), &mut no_conns()),
        local(LocalReason::ChainingOff, &orig)
    );
}

/// Servers with their agents and connections, and the wire between them.
struct Cluster {
    hosts: HashMap<Ipv4Addr, (Host, HashSet<Flow>)>,
}

/// Where a packet ended and how many chain hops it took.
#[derive(Debug, PartialEq, Eq)]
struct Trip {
    end: Ipv4Addr,
    verdict: Verdict,
    hops: u32,
}

impl Cluster {
    fn new(dips: &[Ipv4Addr]) -> Self {
        Cluster {
            hosts: dips
                .iter()
                .map(|d| (*d, (host(*d), HashSet::new())))
                .collect(),
        }
    }

    /// The mux sends `inner` to `dip`; follow forwards until a host keeps or
    /// drops it. Gives up after 1000 hops (a loop).
    fn send(&mut self, dip: Ipv4Addr, inner: &[u8], o: Option<OptionFields>, now: u32) -> Trip {
        let mut pkt = from_mux(dip, inner, o);
        let mut at_host = dip;
        let mut hops = 0;
        loop {
            let (h, conns) = self.hosts.get_mut(&at_host).expect("known host");
            let v = h.handle(&mut pkt, at(now), conns);
            match v {
                Verdict::Forward { to } if hops < 1000 => {
                    hops += 1;
                    at_host = to;
                }
                v => {
                    return Trip {
                        end: at_host,
                        verdict: v,
                        hops,
                    };
                }
            }
        }
    }

    fn connect(&mut self, dip: Ipv4Addr, f: Flow) {
        self.hosts.get_mut(&dip).unwrap().1.insert(f);
    }
}

fn reason(t: &Trip) -> Option<LocalReason> {
    match t.verdict {
        Verdict::Local { reason, .. } => Some(reason),
        _ => None,
    }
}

#[test]
fn multi_hop_chain_a_b_c() {
    // The bucket moves A -> B at T0 (generation 1) and B -> C at T0+60
    // (generation 2). A connection opened on A before T0 and one opened on B
    // in between both survive: C -> B -> A and C -> B.
    let mut net = Cluster::new(&[A, B, C]);
    let probe = host(A);
    let (old_a, old_b) = same_bucket_pair(&probe);
    let t1 = T0 + 60;
    net.connect(A, old_a);
    net.connect(B, old_b);
    // While the bucket is on B, the mux's packets teach B where it was.
    let on_b = net.send(B, &seg(old_b, TCP_ACK, 1), opt(A, T0, 1), T0 + 1);
    assert_eq!(reason(&on_b), Some(LocalReason::Connection));
    let via_b = net.send(B, &seg(old_a, TCP_ACK, 1), opt(A, T0, 1), T0 + 2);
    assert_eq!((via_b.end, via_b.hops), (A, 1));
    // After the second move the mux sends to C with previous DIP B.
    // (A has no recent change of its own, so it needs no lookup: "stable".)
    let t = net.send(C, &seg(old_a, TCP_ACK, 2), opt(B, t1, 2), t1 + 1);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (A, 2, Some(LocalReason::Stable))
    );
    let t = net.send(C, &seg(old_b, TCP_ACK, 2), opt(B, t1, 2), t1 + 1);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (B, 1, Some(LocalReason::Connection))
    );
    // A new connection stays on C.
    let new = Flow {
        client_port: (old_b.client_port + 1..)
            .find(|p| probe.bucket_of(CLIENT, *p) == probe.bucket_of(CLIENT, old_a.client_port))
            .unwrap(),
        ..old_a
    };
    let t = net.send(C, &seg(new, TCP_SYN, 0), opt(B, t1, 2), t1 + 1);
    assert_eq!((t.end, t.hops, reason(&t)), (C, 0, Some(LocalReason::Syn)));
    // B's change (T0) expires before C's (T0+60): then C -> B ends at B.
    let t = net.send(C, &seg(old_a, TCP_ACK, 3), opt(B, t1, 2), T0 + TIMEOUT);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (B, 1, Some(LocalReason::Stable))
    );
    // And after C's change expires, nothing is chained any more.
    let t = net.send(C, &seg(old_a, TCP_ACK, 4), opt(NONE, 0, 3), t1 + TIMEOUT);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (C, 0, Some(LocalReason::Stable))
    );
}

#[test]
fn a_b_a_inside_the_timeout_does_not_loop() {
    // The bucket moves A -> B at T0 and back B -> A at T0+30. Connections
    // of both eras survive; a packet that belongs to neither goes A -> B ->
    // A and stops there (the loop guard), instead of bouncing until its
    // TTL runs out.
    let mut net = Cluster::new(&[A, B]);
    let probe = host(A);
    let (old_a, mid_b) = same_bucket_pair(&probe);
    let stray = Flow {
        client_port: (mid_b.client_port + 1..)
            .find(|p| probe.bucket_of(CLIENT, *p) == probe.bucket_of(CLIENT, old_a.client_port))
            .unwrap(),
        ..old_a
    };
    net.connect(A, old_a);
    net.connect(B, mid_b);
    let t1 = T0 + 30;
    let t = net.send(B, &seg(mid_b, TCP_ACK, 1), opt(A, T0, 1), T0 + 1);
    assert_eq!((t.end, t.hops), (B, 0));
    // Back on A.
    let t = net.send(A, &seg(old_a, TCP_ACK, 2), opt(B, t1, 2), t1 + 1);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (A, 0, Some(LocalReason::Connection))
    );
    let t = net.send(A, &seg(mid_b, TCP_ACK, 2), opt(B, t1, 2), t1 + 1);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (B, 1, Some(LocalReason::Connection))
    );
    let t = net.send(A, &seg(stray, TCP_ACK, 2), opt(B, t1, 2), t1 + 1);
    assert_eq!(
        (t.end, t.hops, reason(&t)),
        (A, 2, Some(LocalReason::LoopGuard)),
        "A -> B -> A, then the stack at A answers with a RST"
    );
}

#[test]
fn the_ttl_bounds_any_cycle_of_stale_state() {
    // Learned state the guard cannot see through: the mux says the bucket
    // came to A from C; C learned B as its predecessor, and B and D each
    // learned the other (two moves between them whose packets reached them,
    // a history the controller avoids but learned state may still hold).
    // The packet goes A -> C -> B -> D -> B -> ... until the TTL is spent.
    const D: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 4);
    let mut net = Cluster::new(&[A, B, C, D]);
    let probe = host(A);
    let (stray, other) = same_bucket_pair(&probe);
    net.send(C, &seg(other, TCP_SYN, 0), opt(B, T0, 1), T0);
    net.send(B, &seg(other, TCP_SYN, 0), opt(D, T0 + 5, 2), T0 + 5);
    net.send(D, &seg(other, TCP_SYN, 0), opt(B, T0 + 10, 3), T0 + 10);
    let t = net.send(A, &seg(stray, TCP_ACK, 2), opt(C, T0 + 20, 4), T0 + 21);
    assert_eq!(reason(&t), Some(LocalReason::TtlSpent));
    assert_eq!(t.hops, 63, "TTL 64 allows 63 chain hops, then the stack");
}

#[test]
fn malformed_and_spoofed_packets_are_dropped_and_counted() {
    let f = flow(1234);
    let good_inner = seg(f, TCP_ACK, 1);
    let good = from_mux(B, &good_inner, opt(A, T0, 1));
    let fix = |mut p: Vec<u8>| {
        let hl = usize::from(p[0] & 0xf) * 4;
        if p.len() >= hl.max(20) {
            Ipv4Packet::new_checked(&mut p[..hl.max(20)])
                .unwrap()
                .fill_checksum();
        }
        p
    };
    let with = |at: usize, v: u8| {
        let mut p = good.clone();
        p[at] = v;
        fix(p)
    };
    let inner_with = |at: usize, v: u8| {
        let mut i = good_inner.clone();
        i[at] = v;
        from_mux(B, &i, opt(A, T0, 1))
    };
    let cases: Vec<(&str, Vec<u8>, Discard)> = vec![
        ("empty", vec![], Discard::Truncated),
        ("19 bytes", good[..19].to_vec(), Discard::Truncated),
        ("IPv6 version", with(0, 0x69), Discard::NotIpv4),
        ("IHL 6", with(0, 0x46), Discard::UnexpectedIhl),
        ("IHL 15", with(0, 0x4f), Discard::UnexpectedIhl),
        ("IHL 9, 30 bytes", good[..30].to_vec(), Discard::Truncated),
        (
            "bad checksum",
            {
                let mut p = good.clone();
                p[10] ^= 1;
                p
            },
            Discard::BadChecksum,
        ),
        ("protocol TCP", with(9, 6), Discard::NotIpip),
        ("more fragments", with(6, 0x20), Discard::Fragment),
        (
            "to another DIP",
            from_mux(C, &good_inner, opt(A, T0, 1)),
            Discard::NotForThisHost,
        ),
        (
            "unknown tunnel source",
            encapsulate(&good_inner, Ipv4Addr::new(10, 9, 0, 66), B, opt(A, T0, 1)),
            Discard::UnknownTunnelSource,
        ),
        ("option type 0x44", with(20, 0x44), Discard::WrongOptionType),
        ("option length 12", with(21, 12), Discard::WrongOptionLength),
        ("option length 0", with(21, 0), Discard::WrongOptionLength),
        ("no inner", good[..36].to_vec(), Discard::InnerTruncated),
        (
            "inner 19 bytes",
            good[..36 + 19].to_vec(),
            Discard::InnerTruncated,
        ),
        (
            "inner TCP header cut",
            good[..36 + 20 + 10].to_vec(),
            Discard::InnerTruncated,
        ),
        (
            "inner total length past the end",
            inner_with(3, 0xff),
            Discard::InnerTruncated,
        ),
        (
            "inner version 6",
            inner_with(0, 0x65),
            Discard::InnerNotIpv4,
        ),
        ("inner IHL 4", inner_with(0, 0x44), Discard::InnerNotIpv4),
        (
            "inner total length below the header",
            {
                let mut i = good_inner.clone();
                i[2..4].copy_from_slice(&10u16.to_be_bytes());
                from_mux(B, &i, opt(A, T0, 1))
            },
            Discard::InnerNotIpv4,
        ),
        ("inner fragment", inner_with(7, 8), Discard::InnerFragment),
        (
            "inner to a non-VIP",
            inner_with(19, 101),
            Discard::InnerNotVip,
        ),
        ("inner ICMP", inner_with(9, 1), Discard::InnerProtocol),
        (
            "inner UDP header cut",
            {
                let mut i = udp_datagram(CLIENT, 1, VIP, 53, b"");
                i.truncate(24);
                i[2..4].copy_from_slice(&24u16.to_be_bytes());
                from_mux(B, &i, opt(A, T0, 1))
            },
            Discard::InnerTruncated,
        ),
        (
            "no option, service port",
            from_mux(B, &good_inner, None),
            Discard::NoOption,
        ),
    ];
    let mut h = host(B);
    let mut expected = [0u64; Discard::COUNT];
    for (what, mut p, d) in cases {
        assert_eq!(
            h.handle(&mut p, at(T0), &mut no_conns()),
            Verdict::Drop(d),
            "{what}"
        );
        expected[d.index()] += 1;
    }
    assert_eq!(h.counters().dropped, expected);
    assert_eq!(h.counters().learned, 0, "nothing learned from bad packets");
    assert_eq!(h.newest_generation(), 0);
    // The good packet itself is chained to A.
    let mut p = good.clone();
    assert_eq!(
        h.handle(&mut p, at(T0), &mut no_conns()),
        Verdict::Forward { to: A }
    );
}

#[test]
fn trailing_bytes_after_the_inner_packet_are_not_delivered() {
    let mut h = host(B);
    let inner = seg(flow(9), TCP_SYN, 0);
    let mut p = from_mux(B, &inner, opt(NONE, 0, 1));
    p.extend_from_slice(&[0; 6]); // padding
    let v = h.handle(&mut p, at(T0), &mut no_conns());
    assert_eq!(
        v,
        Verdict::Local {
            reason: LocalReason::Syn,
            inner: 36..36 + inner.len()
        }
    );
}

#[test]
fn bad_configs_name_the_field() {
    let ok = HostConfig::new(B, vec![VIP], vec![MUX], 16);
    assert!(ok.validate().is_ok());
    let cases: Vec<(HostConfig, &str)> = vec![
        (
            HostConfig {
                dip: NONE,
                ..ok.clone()
            },
            "--dip",
        ),
        (
            HostConfig {
                vips: vec![],
                ..ok.clone()
            },
            "--vip",
        ),
        (
            HostConfig {
                vips: vec![VIP, VIP],
                ..ok.clone()
            },
            "--vip",
        ),
        (
            HostConfig {
                vips: vec![B],
                ..ok.clone()
            },
            "--dip",
        ),
        (
            HostConfig {
                tunnel_sources: vec![],
                ..ok.clone()
            },
            "--tunnel-src",
        ),
        (
            HostConfig {
                bucket_bits: 0,
                ..ok.clone()
            },
            "--bucket-bits",
        ),
        (
            HostConfig {
                bucket_bits: 21,
                ..ok.clone()
            },
            "--bucket-bits",
        ),
        (
            HostConfig {
                server_ports: vec![0],
                ..ok.clone()
            },
            "--port",
        ),
    ];
    for (cfg, field) in cases {
        let e = Host::new(cfg).unwrap_err().to_string();
        assert!(e.starts_with(field), "{e:?} names {field}");
    }
}

#[test]
fn a_generation_that_went_back_is_accepted_after_a_timeout() {
    // A controller restarted and counts from 1 again. Until the old newest
    // generation (50) has been unseen for a daisy timeout, generation 1 is
    // a stale mux; after that it is the new normal.
    let mut h = host(B);
    let (f, _) = same_bucket_pair(&h);
    let mut p = from_mux(B, &seg(flow(7), TCP_SYN, 0), opt(NONE, 0, 50));
    h.handle(&mut p, at(T0), &mut no_conns());
    let stray = |h: &mut Host, t: u32| {
        let mut p = from_mux(B, &seg(f, TCP_ACK, 1), opt(NONE, 0, 1));
        h.handle(&mut p, at(t), &mut no_conns())
    };
    assert_eq!(
        stray(&mut h, T0 + 10),
        Verdict::Drop(Discard::StaleGeneration)
    );
    assert_eq!(
        stray(&mut h, T0 + TIMEOUT - 1),
        Verdict::Drop(Discard::StaleGeneration)
    );
    assert!(matches!(
        stray(&mut h, T0 + TIMEOUT),
        Verdict::Local {
            reason: LocalReason::Stable,
            ..
        }
    ));
    assert_eq!(h.newest_generation(), 1);
}

#[test]
fn an_expired_change_is_replaced_even_by_an_older_timestamp() {
    // The controller's clock stepped back an hour after a change was
    // learned: once that change has expired, the next one is learned.
    let mut h = host(B);
    let (f, g) = same_bucket_pair(&h);
    let bucket = h.bucket_of(CLIENT, f.client_port);
    teach(&mut h, B, g, A, T0, 1);
    let later = T0 + TIMEOUT + 10;
    let back = later - 3600;
    let mut p = from_mux(B, &seg(g, TCP_SYN, 0), opt(C, back, 2));
    h.handle(&mut p, at(later), &mut no_conns());
    assert_eq!(
        h.learned(VIP, bucket).map(|l| (l.prev_dip, l.change_time)),
        Some((C, back))
    );
    // Its own age decides whether it chains (an hour old here: no).
    let mut p = from_mux(B, &seg(f, TCP_ACK, 1), opt(C, back, 2));
    assert!(matches!(
        h.handle(&mut p, at(later), &mut no_conns()),
        Verdict::Local {
            reason: LocalReason::Stable,
            ..
        }
    ));
}
