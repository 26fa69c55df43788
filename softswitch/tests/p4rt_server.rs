//! The server as `beamer switch` runs it: on its own thread and runtime
//! ([`Builder::spawn`]), stopped with clients still connected.

mod p4rt_support;

use beamer_pipeline::p4rt::Code;
use beamer_softswitch::{Switch, p4rt};
use p4rt_support::*;
use std::time::{Duration, Instant};

#[test]
fn shutdown_does_not_wait_for_connected_controllers() {
    let switch = Switch::new(small_params()).unwrap();
    let handle = p4rt::builder(switch)
        .spawn("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let addr = handle.local_addr();
    assert_ne!(addr.port(), 0);

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut stream = client_rt.block_on(async {
        let mut client = p4runtime_proto::p4::v1::p4_runtime_client::P4RuntimeClient::connect(
            format!("http://{addr}"),
        )
        .await
        .unwrap();
        let mut s = Stream::open(&mut client).await;
        s.arbitrate(DEV, "", Some(1)).await;
        assert_eq!(s.next_arbitration().await, (Code::Ok, Some(1)));
        s
    });

    // The controller stays connected; the switch stops anyway, promptly.
    let start = Instant::now();
    handle.shutdown().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // And the controller sees its stream end.
    let end = client_rt.block_on(stream.next());
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
}

#[test]
fn spawn_checks_a_preinstalled_p4info_up_front() {
    let switch = Switch::new(small_params()).unwrap();
    let other = beamer_pipeline::PipelineParams {
        routes: 99,
        ..small_params()
    };
    let err = p4rt::builder(switch)
        .preinstalled(p4info(&other))
        .spawn("127.0.0.1:0".parse().unwrap())
        .unwrap_err();
    assert!(matches!(err, p4rt::ServeError::Pipeline(_)), "{err}");
}

#[test]
fn a_busy_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = p4rt::builder(Switch::new(small_params()).unwrap())
        .spawn(addr)
        .unwrap_err();
    assert!(
        matches!(err, p4rt::ServeError::Bind(a, _) if a == addr),
        "{err}"
    );
    assert!(err.to_string().contains(&addr.to_string()));
}
