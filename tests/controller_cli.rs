//! `beamer controller` and `beamer ctl` as an operator runs them: a config
//! check, a bad config named by file, line and field, and `ctl` commands
//! against a running controller driving a software switch.

use beamer_controller::config::Config;
use beamer_controller::service;
use beamer_pipeline::PipelineParams;
use beamer_softswitch::Switch;
use beamer_softswitch::p4rt;
use std::path::Path;
use std::process::{Command, Output};

fn beamer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beamer"))
        .args(args)
        .output()
        .expect("run beamer")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_example_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("controller/examples/beamer.toml");
    let o = beamer(&["controller", "--check", "--config", path.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains(": OK"), "{out}");
    assert!(
        out.contains("switch mux-a 127.0.0.1:9559 (softswitch"),
        "{out}"
    );
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("beamer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("controller/examples/beamer.toml");
    let good = std::fs::read_to_string(example).unwrap();
    let bad = good.replacen("weight = 2", "weight = 0", 1);
    let line = bad[..bad.find("weight = 0").unwrap()].matches('\n').count() + 1;
    let file = dir.join("bad.toml");
    std::fs::write(&file, bad).unwrap();
    let o = beamer(&["controller", "--config", file.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}{err}");
    let want = format!("{}:{line}:", file.display());
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains("vips[0].servers[2].weight: must be at least 1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctl_drives_a_running_controller() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let switch = Switch::new(PipelineParams::default()).unwrap();
    let server = p4rt::builder(switch.clone())
        .device_id(1)
        .spawn("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let text_cfg = format!(
        r#"
[controller]
tunnel_src = "10.0.0.1"
admin_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[[vips]]
address = "192.0.2.10"
ports = ["tcp/80"]
buckets = 1024

[[vips.servers]]
dip = "10.1.0.1"

[[switches]]
name = "mux-a"
address = "{}"
target = "softswitch"
"#,
        server.local_addr()
    );
    let config = Config::parse(&text_cfg, Path::new("ctl.toml"), Path::new(".")).unwrap();
    let running = rt.block_on(service::start(config)).unwrap();
    let admin = running.admin_addr.to_string();
    assert!(
        rt.block_on(
            running
                .handle
                .wait_in_sync(1, std::time::Duration::from_secs(30))
        )
    );

    let o = beamer(&["ctl", "--admin", &admin, "status"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("generation 1"), "{out}");
    assert!(out.contains("10.1.0.1"), "{out}");
    assert!(out.contains("in sync at generation 1"), "{out}");

    let o = beamer(&[
        "ctl", "--admin", &admin, "server", "add", "10.1.0.2", "--port", "9002", "--weight", "3",
        "--wait",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("generation 2: moved 768 buckets (minimum 768)"),
        "{out}"
    );
    assert!(out.contains("every switch holds generation 2"), "{out}");
    let holds_2 = switch
        .all_entries()
        .iter()
        .filter(|e| matches!(e, beamer_pipeline::entries::Entry::Bucket(_, a) if a.dip.octets() == [10, 1, 0, 2]))
        .count();
    assert_eq!(holds_2, 768);

    let o = beamer(&[
        "ctl", "--admin", &admin, "server", "weight", "10.1.0.2", "1", "--wait",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = beamer(&[
        "ctl",
        "--admin",
        &admin,
        "server",
        "drain",
        "10.1.0.2",
        "--vip",
        "192.0.2.10",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = beamer(&["ctl", "--admin", &admin, "server", "remove", "10.1.0.1"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}{err}");
    assert!(err.contains("would have no active server"), "{err}");
    assert!(err.contains("HTTP 409"), "{err}");

    let o = beamer(&["ctl", "--admin", &admin, "--json", "status"]);
    let status: beamer_controller::api::Status =
        serde_json::from_slice(&o.stdout).expect("status JSON");
    assert_eq!(status.generation, 4);
    assert_eq!(status.vips[0].servers.len(), 2);

    let o = beamer(&["ctl", "--admin", "127.0.0.1:1", "status"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("cannot reach the controller's admin API"),
        "{err}"
    );
    running.shutdown();
    drop(server);
}
