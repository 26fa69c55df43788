//! StreamChannel arbitration over gRPC: primary and backups, duplicate
//! election ids, closed streams, who may write.

mod p4rt_support;

use beamer_pipeline::p4rt::Code;
use p4rt_support::*;
use p4runtime_proto::p4::v1;
use v1::set_forwarding_pipeline_config_request::Action;

#[tokio::test]
async fn primary_backup_and_takeover() {
    let server = Server::start(small_params()).await;
    let mut client = server.client().await;

    // The first controller is primary: OK, its own election id.
    let mut a = primary(&mut client, 10).await;

    // A lower id is a backup: ALREADY_EXISTS with the primary's id, and
    // only the newcomer is told.
    let mut b = Stream::open(&mut client).await;
    b.arbitrate(DEV, "", Some(5)).await;
    assert_eq!(b.next_arbitration().await, (Code::AlreadyExists, Some(10)));
    a.assert_quiet().await;

    // An unset id is lower than any: a backup too.
    let mut c = Stream::open(&mut client).await;
    c.arbitrate(DEV, "", None).await;
    assert_eq!(c.next_arbitration().await, (Code::AlreadyExists, Some(10)));

    // A higher id takes over; everyone hears of it.
    let mut d = Stream::open(&mut client).await;
    d.arbitrate(DEV, "", Some(20)).await;
    assert_eq!(d.next_arbitration().await, (Code::Ok, Some(20)));
    assert_eq!(a.next_arbitration().await, (Code::AlreadyExists, Some(20)));
    assert_eq!(b.next_arbitration().await, (Code::AlreadyExists, Some(20)));
    assert_eq!(c.next_arbitration().await, (Code::AlreadyExists, Some(20)));

    // Only the new primary may set the pipeline.
    let p4info = p4info(&small_params());
    let denied = set_pipeline(
        &mut client,
        10,
        Action::VerifyAndCommit,
        Some(p4info.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    set_pipeline(&mut client, 20, Action::VerifyAndCommit, Some(p4info))
        .await
        .unwrap();
    drop((a, b, c, d));
    server.stop().await;
}

#[tokio::test]
async fn closing_the_primary_leaves_no_primary_until_one_claims_it() {
    let (server, mut client, primary_stream) = ready(small_params()).await;
    let mut backup = Stream::open(&mut client).await;
    backup.arbitrate(DEV, "", Some(0)).await;
    assert_eq!(
        backup.next_arbitration().await,
        (Code::AlreadyExists, Some(1))
    );

    // The primary goes away: the backup is told there is none (NOT_FOUND,
    // highest id seen), and is not promoted (spec since v1.1.0).
    primary_stream.close();
    assert_eq!(backup.next_arbitration().await, (Code::NotFound, Some(1)));
    let vip = beamer_pipeline::p4rt::config_to_p4(&Default::default());
    let err = write(&mut client, vec![modify(vip.clone())])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // Claiming the highest id seen makes it primary, and it may write.
    backup.arbitrate(DEV, "", Some(1)).await;
    assert_eq!(backup.next_arbitration().await, (Code::Ok, Some(1)));
    write(&mut client, vec![modify(vip)]).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_primary_can_step_down() {
    let (server, mut client, mut p) = ready(small_params()).await;
    let mut backup = Stream::open(&mut client).await;
    backup.arbitrate(DEV, "", Some(0)).await;
    assert_eq!(
        backup.next_arbitration().await,
        (Code::AlreadyExists, Some(1))
    );
    // Re-arbitrating with its own id changes nothing but is answered.
    p.arbitrate(DEV, "", Some(1)).await;
    assert_eq!(p.next_arbitration().await, (Code::Ok, Some(1)));
    // Unset id: a downgrade, everyone is told there is no primary.
    p.arbitrate(DEV, "", None).await;
    assert_eq!(p.next_arbitration().await, (Code::NotFound, Some(1)));
    assert_eq!(
        backup.next_arbitration().await,
        (Code::AlreadyExists, Some(1))
    );
    assert_eq!(backup.next_arbitration().await, (Code::NotFound, Some(1)));
    server.stop().await;
}

#[tokio::test]
async fn a_second_stream_with_the_same_election_id_is_refused() {
    let (server, mut client, mut p) = ready(small_params()).await;
    let before = state(&server.switch);
    let mut twin = Stream::open(&mut client).await;
    twin.arbitrate(DEV, "", Some(1)).await;
    assert_eq!(twin.ended_with().await, tonic::Code::InvalidArgument);
    // The first stream is still primary, untouched and uninformed.
    p.assert_quiet().await;
    write(
        &mut client,
        vec![modify(beamer_pipeline::p4rt::config_to_p4(
            &beamer_pipeline::entries::SwitchConfig {
                tunnel_src: ip("192.0.2.1"),
                generation: 3,
            },
        ))],
    )
    .await
    .unwrap();
    assert_ne!(state(&server.switch), before);
    // The same id in another role is fine.
    let mut other = Stream::open(&mut client).await;
    other.arbitrate(DEV, "other", Some(1)).await;
    assert_eq!(other.next_arbitration().await, (Code::Ok, Some(1)));
    server.stop().await;
}

#[tokio::test]
async fn bad_arbitration_ends_the_stream_with_the_spec_code() {
    let server = Server::start_with(small_params(), |b| b.max_streams_per_role(2)).await;
    let mut client = server.client().await;

    // Unknown device, and 0 (never valid).
    for device in [7, 0] {
        let mut s = Stream::open(&mut client).await;
        s.arbitrate(device, "", Some(1)).await;
        assert_eq!(
            s.ended_with().await,
            tonic::Code::NotFound,
            "device {device}"
        );
    }
    // A role configuration this switch has no scheme for.
    let mut s = Stream::open(&mut client).await;
    s.send(v1::stream_message_request::Update::Arbitration(
        v1::MasterArbitrationUpdate {
            device_id: DEV,
            role: Some(v1::Role {
                name: "r".into(),
                config: Some(Default::default()),
                ..Default::default()
            }),
            election_id: Some(1u128.into()),
            status: None,
        },
    ))
    .await;
    assert_eq!(s.ended_with().await, tonic::Code::InvalidArgument);

    // A live stream may not change device or role.
    let mut p = primary(&mut client, 5).await;
    p.arbitrate(2, "", Some(5)).await;
    assert_eq!(p.ended_with().await, tonic::Code::FailedPrecondition);
    let mut p = primary(&mut client, 5).await;
    p.arbitrate(DEV, "elsewhere", Some(5)).await;
    assert_eq!(p.ended_with().await, tonic::Code::FailedPrecondition);

    // The stream limit per role.
    let _p = primary(&mut client, 6).await;
    let mut b = Stream::open(&mut client).await;
    b.arbitrate(DEV, "", Some(1)).await;
    assert_eq!(b.next_arbitration().await, (Code::AlreadyExists, Some(6)));
    let mut third = Stream::open(&mut client).await;
    third.arbitrate(DEV, "", Some(2)).await;
    assert_eq!(third.ended_with().await, tonic::Code::ResourceExhausted);
    server.stop().await;
}

#[tokio::test]
async fn writes_need_the_primary_of_a_known_role_and_device() {
    let (server, mut client, _p) = ready(small_params()).await;
    let mut backup = Stream::open(&mut client).await;
    backup.arbitrate(DEV, "", Some(0)).await;
    backup.next_arbitration().await;
    let before = state(&server.switch);
    let te = beamer_pipeline::p4rt::config_to_p4(&beamer_pipeline::entries::SwitchConfig {
        tunnel_src: ip("192.0.2.9"),
        generation: 9,
    });

    let cases: Vec<(&str, v1::WriteRequest, tonic::Code)> = vec![
        (
            "a backup's election id",
            write_request(0, vec![modify(te.clone())]),
            tonic::Code::PermissionDenied,
        ),
        (
            "an id nobody holds",
            write_request(2, vec![modify(te.clone())]),
            tonic::Code::PermissionDenied,
        ),
        (
            "no election id",
            v1::WriteRequest {
                election_id: None,
                ..write_request(1, vec![modify(te.clone())])
            },
            tonic::Code::PermissionDenied,
        ),
        (
            "an unknown device",
            v1::WriteRequest {
                device_id: 99,
                ..write_request(1, vec![modify(te.clone())])
            },
            tonic::Code::NotFound,
        ),
        (
            "an unknown role",
            v1::WriteRequest {
                role: "nobody".into(),
                ..write_request(1, vec![modify(te.clone())])
            },
            tonic::Code::NotFound,
        ),
    ];
    for (what, request, code) in cases {
        let err = client.write(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err:?}");
        assert!(
            p4runtime_proto::status::batch_errors(&err).is_empty(),
            "{what}: an RPC-wide error carries no per-update details"
        );
        assert_eq!(state(&server.switch), before, "{what}");
    }
    // Reads need no arbitration at all.
    let (entities, status) = read(&mut client, vec![table_entity(v1::TableEntry::default())]).await;
    status.unwrap();
    assert!(entities.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn packet_out_and_digests_get_stream_errors() {
    let (server, mut client, _p) = ready(small_params()).await;
    let mut backup = Stream::open(&mut client).await;
    backup.arbitrate(DEV, "", Some(0)).await;
    backup.next_arbitration().await;
    let stream_error = |m: Option<v1::StreamMessageResponse>| match m.unwrap().update {
        Some(v1::stream_message_response::Update::Error(e)) => {
            Code::try_from(e.canonical_code).unwrap()
        }
        other => panic!("expected a stream error, got {other:?}"),
    };
    backup
        .send(v1::stream_message_request::Update::Packet(
            v1::PacketOut::default(),
        ))
        .await;
    assert_eq!(
        stream_error(backup.next().await.unwrap()),
        Code::PermissionDenied
    );
    let mut p = primary(&mut client, 2).await;
    assert_eq!(
        backup.next_arbitration().await,
        (Code::AlreadyExists, Some(2))
    );
    p.send(v1::stream_message_request::Update::Packet(
        v1::PacketOut::default(),
    ))
    .await;
    assert_eq!(stream_error(p.next().await.unwrap()), Code::Unimplemented);
    p.send(v1::stream_message_request::Update::DigestAck(
        v1::DigestListAck {
            digest_id: 1,
            list_id: 1,
        },
    ))
    .await;
    assert_eq!(stream_error(p.next().await.unwrap()), Code::InvalidArgument);
    // The stream stays up: still the primary.
    p.arbitrate(DEV, "", Some(2)).await;
    assert_eq!(p.next_arbitration().await, (Code::Ok, Some(2)));
    server.stop().await;
}

#[tokio::test]
async fn capabilities_report_the_version() {
    let server = Server::start(small_params()).await;
    let mut client = server.client().await;
    for device_id in [0, DEV] {
        let caps = client
            .capabilities(v1::CapabilitiesRequest { device_id })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(caps.p4runtime_api_version, "1.5.0");
    }
    let err = client
        .capabilities(v1::CapabilitiesRequest { device_id: 3 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.stop().await;
}
