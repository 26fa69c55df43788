//! A simulated server: `beamer-host`'s decision logic in front of a model of
//! a TCP/MPTCP stack that only remembers which connections it has.

use beamer_host::{Flow, Host, HostConfig, Time, Verdict};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use beamer_pipeline::wire::{Ipv4Packet, TcpHeader};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// What a server's stack did with a packet handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A SYN (or an MPTCP join) opened a socket.
    Accepted,
    /// A packet of a connection the stack has.
    Ok,
    /// A FIN closed the socket.
    Closed,
    /// No socket for the packet (or a join with an unknown token): the
    /// stack answers with a RST.
    Reset,
}

/// What became of one packet handed to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// It reached the stack of `dip`, which answered.
    Stack { dip: Ipv4Addr, answer: Answer },
    /// A host dropped it.
    HostDrop(beamer_host::Discard),
    /// It was sent to a server that is gone.
    NoServer(Ipv4Addr),
    /// More chain hops than any valid chain needs.
    TooManyHops,
}

/// One backend: its host agent and its stack.
#[derive(Debug)]
pub(crate) struct SimServer {
    pub(crate) host: Host,
    /// The stack's sockets, as the host's local-connection lookup sees
    /// them (the agent asks the kernel with `sock_diag`; this is the set).
    pub(crate) sockets: HashSet<Flow>,
    /// MPTCP connections this server accepted, by token (a join with
    /// another token is refused, as a kernel refuses an unknown token).
    tokens: HashSet<u32>,
    /// Client connections whose first subflow this server accepted and
    /// that are still alive.
    pub(crate) owned: u32,
}

impl SimServer {
    pub(crate) fn new(cfg: HostConfig) -> Result<Self, beamer_host::ConfigError> {
        Ok(SimServer {
            host: Host::new(cfg)?,
            sockets: HashSet::new(),
            tokens: HashSet::new(),
            owned: 0,
        })
    }

    pub(crate) fn add_token(&mut self, token: u32) {
        self.tokens.insert(token);
    }

    pub(crate) fn forget(&mut self, flow: &Flow, token: Option<u32>) {
        self.sockets.remove(flow);
        if let Some(t) = token {
            self.tokens.remove(&t);
        }
    }

    /// The stack's answer to the inner IPv4 packet `inner`. `join` is the
    /// MPTCP token of a SYN to this server's per-server port.
    fn stack(&mut self, inner: &[u8], join: Option<u32>) -> Answer {
        let Some((flow, flags)) = parse_inner(inner) else {
            return Answer::Reset;
        };
        if flags & TCP_RST != 0 {
            self.sockets.remove(&flow);
            return Answer::Ok;
        }
        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            if join.is_some_and(|token| !self.tokens.contains(&token)) {
                return Answer::Reset;
            }
            self.sockets.insert(flow);
            return Answer::Accepted;
        }
        if !self.sockets.contains(&flow) {
            return Answer::Reset;
        }
        if flags & TCP_FIN != 0 {
            self.sockets.remove(&flow);
            return Answer::Closed;
        }
        Answer::Ok
    }
}

/// The 4-tuple and TCP flags of an inner packet.
pub(crate) fn parse_inner(inner: &[u8]) -> Option<(Flow, u8)> {
    let ip = Ipv4Packet::new_checked(inner).ok()?;
    let tcp = TcpHeader::new_checked(ip.payload()).ok()?;
    Some((
        Flow {
            client: ip.src(),
            client_port: tcp.src_port(),
            vip: ip.dst(),
            vip_port: tcp.dst_port(),
        },
        tcp.flags(),
    ))
}

/// Hands `packet` (starting at the outer IPv4 header, as the switch sent
/// it) to the server its outer destination names, and follows daisy
/// chains from server to server until a stack answers or a host drops it.
/// `join` is the MPTCP token when the packet is a join SYN.
pub(crate) fn deliver(
    servers: &mut HashMap<Ipv4Addr, SimServer>,
    packet: &mut [u8],
    now: Time,
    join: Option<u32>,
    chained: &mut u64,
) -> Delivery {
    // A valid chain has at most one hop per move inside the daisy timeout;
    // the hosts' outer-TTL guard ends any loop long before this.
    const MAX_HOPS: u32 = 64;
    for _ in 0..MAX_HOPS {
        let Some(dst) = Ipv4Packet::new_checked(&*packet).ok().map(|p| p.dst()) else {
            return Delivery::HostDrop(beamer_host::Discard::Truncated);
        };
        let Some(server) = servers.get_mut(&dst) else {
            return Delivery::NoServer(dst);
        };
        match server.host.handle(packet, now, &mut server.sockets) {
            Verdict::Local { inner, .. } => {
                let answer = server.stack(&packet[inner], join);
                return Delivery::Stack { dip: dst, answer };
            }
            // The host rewrote the outer destination: go round again.
            Verdict::Forward { .. } => *chained += 1,
            Verdict::Drop(d) => return Delivery::HostDrop(d),
        }
    }
    Delivery::TooManyHops
}
