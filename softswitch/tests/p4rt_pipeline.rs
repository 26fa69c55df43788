//! SetForwardingPipelineConfig and GetForwardingPipelineConfig: the
//! generator's P4Info is accepted, others are refused with what differs,
//! every action does what the spec says, and nothing works before.

mod p4rt_support;

use beamer_pipeline::entries::{BucketAction, BucketKey, Entry, SwitchConfig, Update};
use beamer_pipeline::p4rt::{config_to_p4, entry_to_p4};
use beamer_pipeline::{PipelineParams, schema};
use p4rt_support::*;
use p4runtime_proto::p4::config::v1 as cfg;
use p4runtime_proto::p4::v1;
use v1::get_forwarding_pipeline_config_request::ResponseType;
use v1::set_forwarding_pipeline_config_request::Action;

fn bucket(vip_id: u16, bucket: u32, dip: &str) -> Entry {
    Entry::Bucket(
        BucketKey { vip_id, bucket },
        BucketAction {
            dip: ip(dip),
            prev_dip: ip("0.0.0.0"),
            change_time: 0,
        },
    )
}

async fn get(client: &mut Client, rt: ResponseType) -> Option<v1::ForwardingPipelineConfig> {
    client
        .get_forwarding_pipeline_config(v1::GetForwardingPipelineConfigRequest {
            device_id: DEV,
            response_type: rt as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .config
}

#[tokio::test]
async fn nothing_works_before_a_pipeline_is_set() {
    let server = Server::start(small_params()).await;
    let mut client = server.client().await;
    let _p = primary(&mut client, 1).await;
    let err = write(&mut client, vec![modify(config_to_p4(&Default::default()))])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let (_, status) = read(&mut client, vec![table_entity(v1::TableEntry::default())]).await;
    assert_eq!(status.unwrap_err().code(), tonic::Code::FailedPrecondition);
    // Get answers, with config unset (spec, "GetForwardingPipelineConfig").
    assert_eq!(get(&mut client, ResponseType::All).await, None);
    // VERIFY alone sets nothing.
    set_pipeline(
        &mut client,
        1,
        Action::Verify,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap();
    assert_eq!(get(&mut client, ResponseType::All).await, None);
    let err = write(&mut client, vec![modify(config_to_p4(&Default::default()))])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    server.stop().await;
}

#[tokio::test]
async fn the_generators_committed_p4info_is_accepted_and_given_back() {
    // The committed output of `beamer gen` for the default sizes.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../p4/v1model/p4info.txt"
    ))
    .unwrap();
    let p4info = p4runtime_proto::p4info_from_text(&text).unwrap();
    let server = Server::start(small_params()).await;
    let mut client = server.client().await;
    let _p = primary(&mut client, 1).await;
    set_pipeline(
        &mut client,
        1,
        Action::VerifyAndCommit,
        Some(p4info.clone()),
    )
    .await
    .unwrap();
    // The switch now has the P4Info's sizes.
    assert_eq!(server.switch.params(), PipelineParams::default());

    let all = get(&mut client, ResponseType::All).await.unwrap();
    assert_eq!(all.p4info.as_ref(), Some(&p4info));
    assert_eq!(all.cookie.map(|c| c.cookie), Some(42));
    let cookie = get(&mut client, ResponseType::CookieOnly).await.unwrap();
    assert_eq!(
        cookie,
        v1::ForwardingPipelineConfig {
            cookie: all.cookie,
            ..Default::default()
        }
    );
    let info = get(&mut client, ResponseType::P4infoAndCookie)
        .await
        .unwrap();
    assert_eq!((info.p4info, info.cookie), (all.p4info.clone(), all.cookie));
    let dev = get(&mut client, ResponseType::DeviceConfigAndCookie)
        .await
        .unwrap();
    assert_eq!(dev.p4info, None);
    assert_eq!(dev.cookie, all.cookie);
    let err = client
        .get_forwarding_pipeline_config(v1::GetForwardingPipelineConfigRequest {
            device_id: 5,
            response_type: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn a_p4info_that_is_not_this_pipeline_is_refused_with_the_differences() {
    let (server, mut client, _p) = ready(small_params()).await;
    server
        .switch
        .apply_all(&[Update::Insert(bucket(1, 7, "10.0.0.7"))])
        .unwrap();
    let before = state(&server.switch);

    let mut wrong_width = p4info(&small_params());
    let t = wrong_width
        .actions
        .iter_mut()
        .find(|a| a.preamble.as_ref().unwrap().id == schema::FORWARD.id)
        .unwrap();
    t.params[0].bitwidth = 48;
    let mut missing_table = p4info(&small_params());
    missing_table
        .tables
        .retain(|t| t.preamble.as_ref().unwrap().id != schema::ROUTES.id);
    let too_big = p4info(&PipelineParams {
        max_vips: 1 << 16,
        ..small_params()
    });
    let cases: Vec<(&str, Option<cfg::P4Info>, &[&str])> = vec![
        ("no p4info", None, &["no config"]),
        (
            "a forward param 48 bits wide",
            Some(wrong_width),
            &["forward", "bitwidth 48, expected 32"],
        ),
        (
            "no routes table",
            Some(missing_table),
            &["missing table 0x02000003 (routes)"],
        ),
        (
            "an empty P4Info",
            Some(cfg::P4Info::default()),
            &["missing table", "missing action", "missing counter"],
        ),
        (
            "2^16 VIPs of 2^12 buckets",
            Some(too_big),
            &["not valid for v1model"],
        ),
    ];
    for (what, p4info, words) in cases {
        for action in [
            Action::Verify,
            Action::VerifyAndSave,
            Action::VerifyAndCommit,
            Action::ReconcileAndCommit,
        ] {
            let err = set_pipeline(&mut client, 1, action, p4info.clone())
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                tonic::Code::InvalidArgument,
                "{what}, {action:?}: {err:?}"
            );
            for w in words {
                assert!(err.message().contains(w), "{what}: {:?}", err.message());
            }
        }
        assert_eq!(state(&server.switch), before, "{what}");
    }
    // The committed config is still the one set.
    assert_eq!(
        get(&mut client, ResponseType::P4infoAndCookie)
            .await
            .unwrap()
            .p4info,
        Some(p4info(&small_params()))
    );
    // Unset action.
    let err = set_pipeline(
        &mut client,
        1,
        Action::Unspecified,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(state(&server.switch), before);
    server.stop().await;
}

#[tokio::test]
async fn verify_and_commit_clears_and_resizes() {
    let (server, mut client, _p) = ready(small_params()).await;
    write(
        &mut client,
        vec![insert(entry_to_p4(&bucket(0, 1, "10.0.0.1")))],
    )
    .await
    .unwrap();
    write(
        &mut client,
        vec![modify(config_to_p4(&SwitchConfig {
            tunnel_src: ip("192.0.2.1"),
            generation: 2,
        }))],
    )
    .await
    .unwrap();
    assert_eq!(server.switch.all_entries().len(), 1);

    // Same P4Info again: still cleared.
    set_pipeline(
        &mut client,
        1,
        Action::VerifyAndCommit,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap();
    assert!(server.switch.all_entries().is_empty());
    assert_eq!(server.switch.config(), SwitchConfig::default());

    // A bigger bucket key: 2^14 buckets, and bucket 2^13 is now valid.
    let bigger = PipelineParams {
        buckets: 1 << 14,
        ..small_params()
    };
    set_pipeline(
        &mut client,
        1,
        Action::VerifyAndCommit,
        Some(p4info(&bigger)),
    )
    .await
    .unwrap();
    assert_eq!(server.switch.params(), bigger);
    write(
        &mut client,
        vec![insert(entry_to_p4(&bucket(0, 1 << 13, "10.0.0.1")))],
    )
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn reconcile_keeps_the_state_of_an_unchanged_pipeline() {
    let (server, mut client, _p) = ready(small_params()).await;
    write(
        &mut client,
        vec![insert(entry_to_p4(&bucket(0, 1, "10.0.0.1")))],
    )
    .await
    .unwrap();
    let before = state(&server.switch);
    set_pipeline(
        &mut client,
        1,
        Action::ReconcileAndCommit,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap();
    assert_eq!(state(&server.switch), before);
    // Other sizes cannot be reconciled.
    let err = set_pipeline(
        &mut client,
        1,
        Action::ReconcileAndCommit,
        Some(p4info(&PipelineParams {
            routes: 32,
            ..small_params()
        })),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("cannot be preserved"), "{err:?}");
    assert_eq!(state(&server.switch), before);
    server.stop().await;
}

#[tokio::test]
async fn save_then_commit_replays_the_writes_made_in_between() {
    let (server, mut client, _p) = ready(small_params()).await;
    write(
        &mut client,
        vec![insert(entry_to_p4(&bucket(0, 1, "10.0.0.1")))],
    )
    .await
    .unwrap();
    let old = state(&server.switch);

    // COMMIT with nothing saved, or with a config.
    let err = set_pipeline(&mut client, 1, Action::Commit, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    let bigger = PipelineParams {
        buckets: 1 << 14,
        ..small_params()
    };
    set_pipeline(&mut client, 1, Action::VerifyAndSave, Some(p4info(&bigger)))
        .await
        .unwrap();
    let err = set_pipeline(&mut client, 1, Action::Commit, Some(p4info(&bigger)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Writes now refer to the saved config (a 14-bit bucket key) and do
    // not touch the running tables; reads show the saved config's state.
    let e = bucket(1, 1 << 13, "10.0.0.9");
    write(&mut client, vec![insert(entry_to_p4(&e))])
        .await
        .unwrap();
    assert_eq!(state(&server.switch), old);
    let (read_back, status) =
        read(&mut client, vec![table_entity(v1::TableEntry::default())]).await;
    status.unwrap();
    assert_eq!(read_back, vec![table_entity(entry_to_p4(&e))]);
    // The running config is still the committed one.
    assert_eq!(
        get(&mut client, ResponseType::P4infoAndCookie)
            .await
            .unwrap()
            .p4info,
        Some(p4info(&small_params()))
    );

    set_pipeline(&mut client, 1, Action::Commit, None)
        .await
        .unwrap();
    assert_eq!(server.switch.params(), bigger);
    assert_eq!(server.switch.all_entries(), vec![e]);
    assert_eq!(
        get(&mut client, ResponseType::P4infoAndCookie)
            .await
            .unwrap()
            .p4info,
        Some(p4info(&bigger))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_tna_p4info_describes_the_same_pipeline() {
    let server = Server::start(small_params()).await;
    let mut client = server.client().await;
    let _p = primary(&mut client, 1).await;
    let tna = beamer_pipeline::p4rt::expected_p4info(&small_params(), beamer_pipeline::Target::Tna);
    set_pipeline(&mut client, 1, Action::VerifyAndCommit, Some(tna))
        .await
        .unwrap();
    write(
        &mut client,
        vec![insert(entry_to_p4(&bucket(0, 1, "10.0.0.1")))],
    )
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_preinstalled_p4info_serves_the_loaded_tables() {
    let params = small_params();
    let server = Server::start_with(params, |b| b.preinstalled(p4info(&params))).await;
    let mut client = server.client().await;
    server
        .switch
        .apply_all(&[Update::Insert(bucket(0, 3, "10.0.0.3"))])
        .unwrap();
    let (entities, status) = read(&mut client, vec![table_entity(v1::TableEntry::default())]).await;
    status.unwrap();
    assert_eq!(
        entities,
        vec![table_entity(entry_to_p4(&bucket(0, 3, "10.0.0.3")))]
    );
    // Installed by other means: no cookie (spec).
    assert_eq!(
        get(&mut client, ResponseType::All).await.unwrap().cookie,
        None
    );

    // A P4Info of other sizes does not describe the running switch.
    let switch = beamer_softswitch::Switch::new(params).unwrap();
    let err = beamer_softswitch::p4rt::builder(switch)
        .preinstalled(p4info(&PipelineParams {
            routes: 64,
            ..params
        }))
        .service()
        .unwrap_err();
    assert!(err.message.contains("sizes"), "{err}");
    server.stop().await;
}
