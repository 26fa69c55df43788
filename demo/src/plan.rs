//! The demo's script: when servers come and go, when clients stop opening
//! connections, and when the run ends, all in virtual seconds.

use crate::DemoConfig;
use beamer_controller::alloc::scenario::Step;
use beamer_controller::alloc::{Change, ServerSpec, ServicePort, VipSpec};
use std::net::Ipv4Addr;

/// The VIP every client connects to.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Its service port (hashed into the buckets).
pub const SERVICE_PORT: u16 = 80;
/// The VIP's bucket set.
pub const VIP_ID: u16 = 0;
/// The switch's tunnel source: the outer source of every encapsulated
/// packet, and the only one the hosts accept.
pub const TUNNEL_SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 255, 1);

/// Server `n`'s address: 10.0.0.`n`.
pub fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// Server `n`'s per-server port on the VIP (its MPTCP subflows' port).
pub fn server_port(n: u8) -> u16 {
    10_000 + u16::from(n)
}

fn server(n: u8, weight: u32) -> ServerSpec {
    ServerSpec {
        dip: dip(n),
        port: Some(server_port(n)),
        weight,
    }
}

/// The scripted changes and the times that frame the traffic.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The operator's steps; `advance` is relative to the previous step,
    /// the first one runs at time 0.
    pub steps: Vec<Step>,
    /// Clients open new connections until this time (virtual seconds).
    pub open_until: u32,
    /// The run ends here, after every connection had time to finish.
    pub end: u32,
}

impl Plan {
    /// The absolute time of each step, in virtual seconds.
    pub fn times(&self) -> Vec<u32> {
        self.steps
            .iter()
            .scan(0u32, |t, s| {
                *t += s.advance;
                Some(*t)
            })
            .collect()
    }
}

/// The script for `cfg`, with S = `cfg.servers`:
///
/// | time | change |
/// |---|---|
/// | 0 | create the VIP with servers 1..=S |
/// | 60 | add server S+1 |
/// | 100 | drain server 1 |
/// | 140 | server 2's weight 1 -> 2 |
/// | 100 + max lifetime + 20 | remove server 1 (drained; its connections are over) |
/// | that + 20 | add server S+2 |
///
/// Clients keep the connection count up until 60 s after the last step,
/// then the run goes on for a maximum lifetime so every connection ends.
/// Chains expire a daisy timeout after each move, in between.
pub fn plan(cfg: &DemoConfig) -> Plan {
    let s = cfg.servers;
    let mut create = vec![Change::AddVip(VipSpec {
        vip_id: VIP_ID,
        addr: VIP,
        service_ports: vec![ServicePort::tcp(SERVICE_PORT)],
    })];
    create.extend((1..=s).map(|n| Change::AddServer {
        vip_id: VIP_ID,
        server: server(n, 1),
    }));
    let life = cfg.max_lifetime_secs;
    let steps = vec![
        Step::new(format!("create VIP, servers 1-{s}"), 0, create),
        Step::new(
            format!("add server {}", s + 1),
            60,
            vec![Change::AddServer {
                vip_id: VIP_ID,
                server: server(s + 1, 1),
            }],
        ),
        Step::new(
            "drain server 1",
            40,
            vec![Change::DrainServer {
                vip_id: VIP_ID,
                dip: dip(1),
            }],
        ),
        Step::new(
            "server 2: weight 1 -> 2",
            40,
            vec![Change::SetWeight {
                vip_id: VIP_ID,
                dip: dip(2),
                weight: 2,
            }],
        ),
        // At 100 + life + 20: the drained server's last connections started
        // before the drain (t = 100) and lasted at most `life`.
        Step::new(
            "remove server 1 (drained)",
            life - 20,
            vec![Change::RemoveServer {
                vip_id: VIP_ID,
                dip: dip(1),
            }],
        ),
        Step::new(
            format!("add server {}", s + 2),
            20,
            vec![Change::AddServer {
                vip_id: VIP_ID,
                server: server(s + 2, 1),
            }],
        ),
    ];
    let last: u32 = steps.iter().map(|s| s.advance).sum();
    let open_until = last + 60;
    Plan {
        steps,
        open_until,
        end: open_until + life + 10,
    }
}
