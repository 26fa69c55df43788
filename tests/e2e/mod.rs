//! Support of the end-to-end test: addresses, the switch kind, the
//! testbed, the services, the clients, and reads of the switch's tables.

pub mod p4rt;
pub mod services;
pub mod topo;
pub mod traffic;

use std::net::Ipv4Addr;

/// The VIP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 100, 1);
/// Its plain TCP echo service.
pub const TCP_PORT: u16 = 80;
/// Its MPTCP echo service.
pub const MPTCP_PORT: u16 = 8080;
/// The mux's outer source address: assigned nowhere.
pub const TUNNEL_SRC: Ipv4Addr = Ipv4Addr::new(10, 88, 9, 9);
/// The client's address for plain TCP.
pub const CLIENT_TCP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The client's second address, for MPTCP.
pub const CLIENT_MPTCP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 3);
/// The client's gateway: the switch's port 1 (no address; a static
/// neighbour entry names its MAC).
pub const CLIENT_GW: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// The servers' gateway: the switch's port 2.
pub const SERVER_GW: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
/// Servers in the testbed; the controller starts with the first three.
pub const SERVERS: u8 = 4;
/// Servers in the controller's configuration at start.
pub const INITIAL_SERVERS: u8 = 3;
/// Bucket bits of the switch, the controller and the hosts.
pub const BUCKET_BITS: u8 = 12;
/// Daisy timeout of the controller and the hosts, seconds: longer than
/// the scenario.
pub const DAISY_TIMEOUT: u32 = 120;
/// The client link's MTU: the servers' links carry it plus the 36 bytes of
/// the outer header.
pub const CLIENT_MTU: u32 = 1400;

/// Server `n`'s address (its DIP): 10.88.1.(10 + n).
pub fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 1, 10 + n)
}

/// Server `n`'s per-server port on the VIP.
pub fn server_port(n: u8) -> u16 {
    9000 + u16::from(n)
}

/// The server a DIP belongs to.
pub fn server_of(d: Ipv4Addr) -> Option<u8> {
    (1..=SERVERS).find(|&n| dip(n) == d)
}

/// MACs: the switch's ports, the client's and the servers' interfaces.
pub mod mac {
    /// Switch port 1 (client side).
    pub const PORT1: &str = "02:88:00:00:00:01";
    /// The client.
    pub const CLIENT: &str = "02:88:00:00:00:02";
    /// Switch port 2 (server side).
    pub const PORT2: &str = "02:88:00:01:00:01";

    /// Server `n`.
    pub fn server(n: u8) -> String {
        format!("02:88:00:01:00:{:02x}", 0x10 + n)
    }
}

/// The mux under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchKind {
    /// `beamer switch` on AF_PACKET ports.
    Softswitch,
    /// bmv2 `simple_switch_grpc`, through the scripts in `bmv2/`.
    Bmv2,
}

impl SwitchKind {
    /// The name in `BEAMER_E2E_SWITCH` and in the controller's config.
    pub fn name(self) -> &'static str {
        match self {
            SwitchKind::Softswitch => "softswitch",
            SwitchKind::Bmv2 => "bmv2",
        }
    }

    /// The kinds `BEAMER_E2E_SWITCH` selects: `softswitch` (default),
    /// `bmv2`, or `all`.
    pub fn selected() -> Result<Vec<SwitchKind>, String> {
        match std::env::var("BEAMER_E2E_SWITCH").as_deref() {
            Err(_) | Ok("") | Ok("softswitch") => Ok(vec![SwitchKind::Softswitch]),
            Ok("bmv2") => Ok(vec![SwitchKind::Bmv2]),
            Ok("all") => Ok(vec![SwitchKind::Softswitch, SwitchKind::Bmv2]),
            Ok(other) => Err(format!(
                "BEAMER_E2E_SWITCH={other:?}: expected softswitch, bmv2 or all"
            )),
        }
    }
}
