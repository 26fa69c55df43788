//! Cost of asking the kernel whether a 4-tuple has a socket (one
//! `sock_diag` exact lookup over netlink), and of a cache hit in front of
//! it. Runs on loopback in the current namespace; needs no privileges.

#[cfg(target_os = "linux")]
mod linux {
    use beamer_host::linux::SockDiag;
    use beamer_host::{CachedLookup, Flow, LocalConnections, Time};
    use criterion::{Criterion, Throughput};
    use std::hint::black_box;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::time::Duration;

    pub fn bench(c: &mut Criterion) {
        let lo = Ipv4Addr::LOCALHOST;
        let listener = TcpListener::bind((lo, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect((lo, port)).unwrap();
        let _server = listener.accept().unwrap();
        let conn = Flow {
            client: lo,
            client_port: client.local_addr().unwrap().port(),
            vip: lo,
            vip_port: port,
        };
        let none = Flow {
            client_port: 1,
            ..conn
        };
        let now = Time::from_unix_secs(1);
        let mut diag = SockDiag::new().unwrap();
        assert!(diag.has_connection(&conn, now));
        assert!(!diag.has_connection(&none, now));
        let mut g = c.benchmark_group("local_connection_lookup");
        g.throughput(Throughput::Elements(1));
        g.bench_function("sock_diag, connection exists", |b| {
            b.iter(|| diag.has_connection(black_box(&conn), now))
        });
        g.bench_function("sock_diag, none (listener found)", |b| {
            b.iter(|| diag.has_connection(black_box(&none), now))
        });
        let mut cached = CachedLookup::new(
            diag,
            4096,
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        );
        g.bench_function("cache hit", |b| {
            b.iter(|| cached.has_connection(black_box(&conn), now))
        });
        g.finish();
        assert_eq!(cached.inner_mut().errors(), 0);
    }
}

#[cfg(target_os = "linux")]
criterion::criterion_group!(benches, linux::bench);
#[cfg(target_os = "linux")]
criterion::criterion_main!(benches);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the sock_diag lookup exists on Linux only");
}
