//! Pieces shared by the crate's unit tests (compiled for tests only).

use crate::switch::Switch;
use crate::tablefile::TableFile;
use beamer_fixtures::{Pkt, SYN, VIP};
use std::net::Ipv4Addr;

/// One VIP (192.0.2.10, tcp/80) with 16 buckets over two servers, and a
/// route to them out of port 2.
pub(crate) const TWO_SERVERS: &str = r#"
[pipeline]
buckets = 16
max_vips = 1
[config]
tunnel_src = "10.0.0.1"
[[vip]]
addr = "192.0.2.10"
vip_id = 0
service_ports = ["tcp/80"]
[vip.buckets]
round_robin = ["10.1.0.1", "10.1.0.2"]
[[route]]
prefix = "10.1.0.0/24"
port = 2
dst_mac = "02:00:00:00:02:01"
src_mac = "02:00:00:00:00:02"
"#;

/// A switch holding [`TWO_SERVERS`].
pub(crate) fn two_servers() -> Switch {
    TableFile::parse(TWO_SERVERS).unwrap().build().unwrap()
}

/// A 54-byte TCP SYN from `src:sport` to the VIP's port 80.
pub(crate) fn syn(src: [u8; 4], sport: u16) -> Vec<u8> {
    Pkt::tcp((&Ipv4Addr::from(src).to_string(), sport), (VIP, 80), SYN).build()
}
