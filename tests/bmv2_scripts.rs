//! The bmv2 scripts (`bmv2/compile.sh`, `start.sh`, `stop.sh`).
//!
//! p4c and simple_switch_grpc are not installed here, and the first tests
//! make sure of that whatever the machine: they run the scripts with an
//! empty PATH (or a compiler path that does not exist) and check the one
//! line that says what is missing and how to install it, the exit status
//! 69, and that nothing was created.
//!
//! The lifecycle tests then run `start.sh` and `stop.sh` with a stand-in
//! for simple_switch_grpc: a script that records its arguments, writes its
//! log where the real bmv2 does (the `--log-file` name plus `.txt`) and
//! listens on the P4Runtime address like the real server. They check the
//! command line the switch gets, the log file's name, the veth pairs (one
//! end in a namespace, MTU, offloads and IPv6 off), the refusal to start
//! twice, and that `stop.sh`, or a failed start, leaves no process, pid
//! file or veth behind and shows the switch's output and log. They need
//! root, iproute2, ethtool and Python (`BEAMER_PYTHON`, default python3);
//! without them they print what they did not run.

use beamer_testbed::{Scratch, python};
use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Exit status of a script whose tool is not installed (EX_UNAVAILABLE).
const MISSING_TOOL: i32 = 69;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bmv2")
        .join(name)
}

/// bash by absolute path, so that the scripts can run with an empty PATH.
fn bash() -> PathBuf {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("bash")
}

/// Runs `script` with `args` in a clean environment: PATH and the given
/// variables only.
fn run(script_name: &str, args: &[&str], path: &str, env: &[(&str, &str)]) -> Output {
    Command::new(bash())
        .arg(script(script_name))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("run bash")
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The names of the network interfaces, when `ip` is there to list them.
fn links() -> Option<BTreeSet<String>> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect(),
    )
}

#[test]
fn compile_without_p4c_says_how_to_install_it_and_creates_nothing() {
    let s = Scratch::new("beamer-bmv2-test-compile");
    let empty_path = s.path("bin");
    fs::create_dir(&empty_path).unwrap();
    let out_dir = s.path("out");
    let out_arg = out_dir.to_str().unwrap();

    // (description, PATH, environment, expected words in the one line)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "nothing on PATH",
            empty_path.to_str().unwrap(),
            &[],
            "compile.sh: p4c not found on PATH;",
        ),
        (
            "P4C names a missing file",
            "/usr/bin:/bin",
            &[("P4C", "/nonexistent/bin/p4c")],
            "compile.sh: p4c not found at /nonexistent/bin/p4c;",
        ),
    ];
    for (what, path, env, expected) in cases {
        let out = run("compile.sh", &["--out", out_arg], path, env);
        assert_eq!(out.status.code(), Some(MISSING_TOOL), "{what}: {out:?}");
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{what}: one line, got {lines:?}");
        assert!(lines[0].starts_with(expected), "{what}: {lines:?}");
        assert!(
            lines[0].contains("https://github.com/p4lang/p4c#installing-packaged-versions-of-p4c")
                && lines[0].contains("set P4C"),
            "{what}: says how to install: {lines:?}"
        );
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
        assert!(!out_dir.exists(), "{what}: created {}", out_dir.display());
    }
}

#[test]
fn start_without_simple_switch_grpc_says_how_to_install_it_and_creates_nothing() {
    let s = Scratch::new("beamer-bmv2-test-start");
    let empty_path = s.path("bin");
    fs::create_dir(&empty_path).unwrap();
    let run_dir = s.path("run");
    let tag = std::process::id() % 100_000;
    let (a, b) = (format!("bm{tag}a"), format!("bm{tag}b"));
    let veth = format!("1@{a}:{b}");
    let before = links();

    let out = run(
        "start.sh",
        &["--veth", &veth, "--run-dir", run_dir.to_str().unwrap()],
        empty_path.to_str().unwrap(),
        &[],
    );
    assert_eq!(out.status.code(), Some(MISSING_TOOL), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "one line, got {lines:?}");
    assert!(
        lines[0].starts_with("start.sh: simple_switch_grpc not found on PATH;"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains(
            "https://github.com/p4lang/behavioral-model/tree/main/targets/simple_switch_grpc"
        ) && lines[0].contains("--with-pi")
            && lines[0].contains("set SIMPLE_SWITCH_GRPC"),
        "says how to install: {lines:?}"
    );
    assert!(!run_dir.exists(), "created {}", run_dir.display());
    match (before, links()) {
        (Some(before), Some(after)) => {
            assert_eq!(before, after, "interfaces changed");
            assert!(!after.contains(&a) && !after.contains(&b));
        }
        _ => eprintln!("NOTE: no `ip` here; interfaces were not compared"),
    }
}

#[test]
fn stop_with_nothing_started_is_a_no_op() {
    let s = Scratch::new("beamer-bmv2-test-stop");
    let run_dir = s.path("never");
    let out = run(
        "stop.sh",
        &["--run-dir", run_dir.to_str().unwrap()],
        "/usr/sbin:/usr/bin:/sbin:/bin",
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to stop"));
    assert!(!run_dir.exists());
}

#[test]
fn bad_arguments_are_refused_before_anything_happens() {
    let s = Scratch::new("beamer-bmv2-test-usage");
    let fake = s.path("simple_switch_grpc");
    fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    make_executable(&fake);
    let env = [("SIMPLE_SWITCH_GRPC", fake.to_str().unwrap())];
    let run_dir = s.path("run");
    let rd = run_dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--iface", "1@lo", "--log-level", "loud", "--run-dir", rd],
            "--log-level loud",
        ),
        (
            &["--veth", "1@only-one-name", "--run-dir", rd],
            "expected N@IFACE:PEER",
        ),
        (
            &["--iface", "1@lo", "--iface", "1@lo2", "--run-dir", rd],
            "port 1 given twice",
        ),
        (&["--run-dir", rd], "no ports"),
        (
            &["--iface", "1@lo", "--grpc", "9559", "--run-dir", rd],
            "expected HOST:PORT",
        ),
        (
            &["--iface", "1@lo", "--bogus"],
            "unknown argument '--bogus'",
        ),
        // bmv2 would write x.log.txt: the name must say so.
        (
            &["--iface", "1@lo", "--log-file", "x.log", "--run-dir", rd],
            "give a name ending in .txt (such as x.log.txt)",
        ),
    ];
    for (args, expected) in cases {
        let out = run("start.sh", args, "/usr/sbin:/usr/bin:/sbin:/bin", &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expected),
            "{args:?}: {err:?} lacks {expected:?}"
        );
        assert!(!run_dir.exists(), "{args:?} created the run directory");
    }
}

/// A stand-in for p4c: records its arguments, one per line, in `argv`, and
/// writes into its `-o` directory the files named in `writes` (or fails).
fn fake_p4c(dir: &Path, writes: &[&str], status: i32) -> PathBuf {
    let p = dir.join("p4c");
    let argv = dir.join("argv");
    let body = format!(
        r#"#!/bin/bash
printf '%s\n' "$@" > '{argv}'
out=; prev=
for a in "$@"; do [[ $prev == -o ]] && out=$a; prev=$a; done
for f in {writes}; do echo '{{}}' > "$out/$f"; done
exit {status}
"#,
        argv = argv.display(),
        writes = writes.join(" "),
    );
    fs::write(&p, body).unwrap();
    make_executable(&p);
    p
}

#[test]
fn compile_runs_p4c_for_bmv2_and_checks_its_outputs() {
    let s = Scratch::new("beamer-bmv2-test-p4c");
    let out_dir = s.path("build");
    let out = out_dir.to_str().unwrap();
    let p4 = Path::new(env!("CARGO_MANIFEST_DIR")).join("p4/v1model/beamer.p4");
    let all = ["beamer.json", "p4info.txt", "p4info.bin"];

    let p4c = fake_p4c(s.dir(), &all, 0);
    let env = [("P4C", p4c.to_str().unwrap())];
    let r = run(
        "compile.sh",
        &["--out", out, "--", "--Wdisable"],
        SYSTEM_PATH,
        &env,
    );
    assert!(r.status.success(), "{r:?}");
    let argv = fs::read_to_string(s.path("argv")).unwrap();
    let p4_arg = script("../p4/v1model/beamer.p4");
    let files = format!("{out}/p4info.txt,{out}/p4info.bin");
    let want = [
        "--target",
        "bmv2",
        "--arch",
        "v1model",
        "--std",
        "p4-16",
        "-o",
        out,
        "--p4runtime-files",
        &files,
        "--Wdisable",
        p4_arg.to_str().unwrap(),
    ];
    assert_eq!(argv.lines().collect::<Vec<_>>(), want);
    assert_eq!(
        fs::read(&p4_arg).unwrap(),
        fs::read(&p4).unwrap(),
        "the default program is the committed one"
    );
    let stdout = String::from_utf8_lossy(&r.stdout);
    for f in all {
        assert!(stdout.contains(&format!("wrote {out}/{f}")), "{stdout}");
    }

    // (description, files the stand-in writes, its status, expected)
    let cases: &[(&str, &[&str], i32, &str)] = &[
        ("p4c fails", &[], 1, "p4c failed on"),
        (
            "no bmv2 JSON",
            &["p4info.txt", "p4info.bin"],
            0,
            "p4c succeeded but did not write",
        ),
    ];
    for (what, writes, status, expected) in cases {
        let _ = fs::remove_dir_all(&out_dir);
        let p4c = fake_p4c(s.dir(), writes, *status);
        let env = [("P4C", p4c.to_str().unwrap())];
        let r = run("compile.sh", &["--out", out], SYSTEM_PATH, &env);
        assert_eq!(r.status.code(), Some(1), "{what}: {r:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(expected), "{what}: {err:?} lacks {expected:?}");
    }
}

// --- lifecycle, with a stand-in for simple_switch_grpc ------------------

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Why the lifecycle tests cannot run here, if they cannot.
fn lifecycle_missing() -> Option<String> {
    beamer_testbed::missing(&["ip", "ethtool", "setsid"], false).or_else(|| {
        let python = python::interpreter();
        Command::new(&python)
            .arg("-V")
            .output()
            .is_err()
            .then(|| format!("no Python ({python})"))
    })
}

macro_rules! require_lifecycle {
    ($what:expr) => {
        if let Some(why) = lifecycle_missing() {
            beamer_testbed::skip_unless_required(
                beamer_testbed::REQUIRE_TOOLS,
                $what,
                &format!("{why}; run as root with iproute2, ethtool and python3"),
            );
            return;
        }
    };
}

/// What the stand-in switch writes to its log, as bmv2 does.
const FAKE_LOG_LINE: &str = "[bmv2] [I] fake: switch started";

/// A stand-in for simple_switch_grpc: writes its arguments, one per line,
/// to `argv`; given `--log-file NAME`, writes a line to `NAME.txt`, where
/// bmv2 1.15 (its spdlog) puts its log; then (in mode "listen") listens on
/// the --grpc-server-addr address until killed, (mode "exit") exits 1 at
/// once, or (mode "mute") sleeps without listening.
fn fake_switch(dir: &Path, mode: &str) -> PathBuf {
    let p = dir.join("simple_switch_grpc");
    let argv = dir.join("argv");
    let body = format!(
        r#"#!/bin/bash
printf '%s\n' "$@" > '{argv}'
addr=; log=; prev=
for a in "$@"; do
    [[ $prev == --grpc-server-addr ]] && addr=$a
    [[ $prev == --log-file ]] && log=$a
    prev=$a
done
[[ -z $log ]] || echo '{FAKE_LOG_LINE}' > "$log.txt"
case {mode} in
exit) echo "fake: cannot open port" >&2; exit 1 ;;
mute) exec sleep 600 ;;
esac
exec '{python}' -c '
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(8)
time.sleep(600)
' "$addr"
"#,
        argv = argv.display(),
        python = python::interpreter(),
    );
    fs::write(&p, body).unwrap();
    make_executable(&p);
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Names, a namespace and a run directory for one lifecycle test; on drop,
/// whatever is left is removed.
struct Rig {
    scratch: Scratch,
    ns: String,
    names: Vec<String>,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let id = std::process::id() % 10_000;
        let ns = format!("bmt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {ns}");
        Rig {
            scratch: Scratch::new(&format!("beamer-bmv2-test-{tag}")),
            ns,
            names: (0..4).map(|i| format!("bm{tag}{id}{i}")).collect(),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.scratch.path("run")
    }

    fn pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.run_dir().join("simple_switch_grpc.pid")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|&p| alive(p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["link", "del", n]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn link_exists(ns: Option<&str>, name: &str) -> bool {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    c.args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ip_out(ns: Option<&str>, args: &[&str]) -> String {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    String::from_utf8_lossy(&c.args(args).output().unwrap().stdout).into_owned()
}

/// Whether IPv6 is disabled on interface `name` (in namespace `ns`);
/// `None` when the kernel has no IPv6.
fn ipv6_disabled(ns: Option<&str>, name: &str) -> Option<bool> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return None;
    }
    // /proc/sys/net shows the namespace of the process that reads it.
    let knob = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    let out = match ns {
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns, "cat", &knob])
            .output(),
        None => Command::new("cat").arg(&knob).output(),
    }
    .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).trim() == "1")
}

fn tx_checksum_off(ns: Option<&str>, name: &str) -> bool {
    let out = match ns {
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-k", name])
            .output(),
        None => Command::new("ethtool").args(["-k", name]).output(),
    }
    .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("tx-checksumming: off")
}

#[test]
fn start_and_stop_with_a_stand_in_switch() {
    require_lifecycle!("start.sh/stop.sh lifecycle");
    let rig = Rig::new("ok");
    let fake = fake_switch(rig.scratch.dir(), "listen");
    let port = free_port();
    let grpc = format!("127.0.0.1:{port}");
    let [a, a_peer, b, b_peer] = [0, 1, 2, 3].map(|i| rig.names[i].clone());
    let run_dir = rig.run_dir();
    let env = [("SIMPLE_SWITCH_GRPC", fake.to_str().unwrap())];
    let veth1 = format!("1@{a}:{a_peer}@{}", rig.ns);
    let veth2 = format!("2@{b}:{b_peer}");
    let args = [
        "--device-id",
        "7",
        "--grpc",
        &grpc,
        "--veth",
        &veth1,
        "--veth",
        &veth2,
        "--mtu",
        "1600",
        "--log-level",
        "warn",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--",
        "--extra-target-option",
    ];

    let out = run("start.sh", &args, SYSTEM_PATH, &env);
    assert!(out.status.success(), "start: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("device id 7, P4Runtime {grpc}")),
        "{stdout}"
    );

    // The command line the switch got: bmv2 options, --no-p4, then the
    // target options after `--`.
    let argv = fs::read_to_string(rig.scratch.path("argv")).unwrap();
    let log = format!("{}/bmv2.log", run_dir.display());
    let want = [
        "--device-id",
        "7",
        "--log-file",
        &log,
        "--log-flush",
        "--log-level",
        "warn",
        "-i",
        &format!("1@{a}"),
        "-i",
        &format!("2@{b}"),
        "--no-p4",
        "--",
        "--grpc-server-addr",
        &grpc,
        "--extra-target-option",
    ];
    assert_eq!(argv.lines().collect::<Vec<_>>(), want);
    // bmv2 wrote its log to the name plus .txt, which start.sh names.
    let log_txt = format!("{log}.txt");
    assert!(stdout.contains(&format!("log {log_txt}")), "{stdout}");
    assert_eq!(fs::read_to_string(&log_txt).unwrap().trim(), FAKE_LOG_LINE);

    // The veths: switch ends here, one peer in the namespace, MTU, offloads.
    let pid = rig.pid().expect("pid file");
    assert!(alive(pid));
    assert!(link_exists(None, &a) && link_exists(None, &b));
    assert!(
        link_exists(Some(&rig.ns), &a_peer),
        "peer moved into {}",
        rig.ns
    );
    assert!(!link_exists(None, &a_peer));
    assert!(link_exists(None, &b_peer));
    assert!(ip_out(None, &["link", "show", "dev", &a]).contains("mtu 1600"));
    assert!(ip_out(Some(&rig.ns), &["link", "show", "dev", &a_peer]).contains("mtu 1600"));
    assert!(ip_out(Some(&rig.ns), &["link", "show", "dev", &a_peer]).contains("state UP"));
    assert!(tx_checksum_off(None, &a) && tx_checksum_off(Some(&rig.ns), &a_peer));
    assert!(tx_checksum_off(None, &b) && tx_checksum_off(None, &b_peer));
    // No IPv6 on either end, the peer in its namespace included.
    for (ns, n) in [
        (None, &a),
        (Some(rig.ns.as_str()), &a_peer),
        (None, &b),
        (None, &b_peer),
    ] {
        match ipv6_disabled(ns, n) {
            Some(off) => assert!(off, "IPv6 on at {n} ({ns:?})"),
            None => eprintln!("NOTE: the kernel has no IPv6; {n} not checked"),
        }
    }

    // A second start with the same run directory is refused, untouched.
    let again = run("start.sh", &args, SYSTEM_PATH, &env);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("already running (pid {pid}"))
    );
    assert!(alive(pid) && link_exists(None, &a));

    let stop = run(
        "stop.sh",
        &["--run-dir", run_dir.to_str().unwrap()],
        SYSTEM_PATH,
        &[],
    );
    assert!(stop.status.success(), "stop: {stop:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "switch still running");
    for (ns, n) in [
        (None, &a),
        (Some(rig.ns.as_str()), &a_peer),
        (None, &b),
        (None, &b_peer),
    ] {
        assert!(!link_exists(ns, n), "{n} left behind");
    }
    assert!(!run_dir.join("simple_switch_grpc.pid").exists());
    assert!(!run_dir.join("veths").exists());
    // Stopping again is harmless.
    let stop = run(
        "stop.sh",
        &["--run-dir", run_dir.to_str().unwrap()],
        SYSTEM_PATH,
        &[],
    );
    assert!(stop.status.success(), "{stop:?}");
}

#[test]
fn a_failed_start_leaves_nothing_behind() {
    require_lifecycle!("start.sh cleanup after a failed start");
    // (description, stand-in mode, extra args, expected in stderr)
    let cases: &[(&str, &str, &[&str], &str)] = &[
        ("switch exits", "exit", &[], "fake: cannot open port"),
        (
            "server never listens",
            "mute",
            &["--wait", "1"],
            "no P4Runtime server on",
        ),
    ];
    for (what, mode, extra, expected) in cases {
        let rig = Rig::new(mode);
        let fake = fake_switch(rig.scratch.dir(), mode);
        let grpc = format!("127.0.0.1:{}", free_port());
        let veth = format!("1@{}:{}@{}", rig.names[0], rig.names[1], rig.ns);
        let run_dir = rig.run_dir();
        let mut args = vec![
            "--grpc",
            &grpc,
            "--veth",
            &veth,
            "--run-dir",
            run_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(
            "start.sh",
            &args,
            SYSTEM_PATH,
            &[("SIMPLE_SWITCH_GRPC", fake.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{what}: {err:?} lacks {expected:?}");
        // The end of the switch's log, from the file bmv2 writes.
        let log = format!("{}/bmv2.log.txt", run_dir.display());
        assert!(
            err.contains(&format!("end of its log ({log})")) && err.contains(FAKE_LOG_LINE),
            "{what}: no log tail in {err:?}"
        );
        assert!(
            !link_exists(None, &rig.names[0]),
            "{what}: veth left behind"
        );
        assert!(
            !link_exists(Some(&rig.ns), &rig.names[1]),
            "{what}: peer left behind"
        );
        assert!(
            !run_dir.join("simple_switch_grpc.pid").exists(),
            "{what}: pid file left"
        );
        assert!(!run_dir.join("veths").exists(), "{what}: veth list left");
    }
}

#[test]
fn the_log_file_is_named_as_bmv2_writes_it() {
    require_lifecycle!("start.sh log file names");
    let s = Scratch::new("beamer-bmv2-test-log");
    let fake = fake_switch(s.dir(), "listen");
    let env = [("SIMPLE_SWITCH_GRPC", fake.to_str().unwrap())];
    let run_dir = s.path("run");
    let rd = run_dir.to_str().unwrap();
    let custom = s.path("switch-log.txt");
    let custom_arg = custom.to_str().unwrap();
    let base = s.path("switch-log");

    // (description, extra start.sh arguments, the log options bmv2 gets,
    // the log file start.sh names)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, Option<&'a Path>);
    let cases: Vec<Case> = vec![
        (
            "a log file of one's own: bmv2 gets the name without .txt",
            vec!["--log-file", custom_arg],
            vec!["--log-file", base.to_str().unwrap(), "--log-flush"],
            Some(custom.as_path()),
        ),
        (
            "logging off: no log file",
            vec!["--log-level", "off"],
            vec![],
            None,
        ),
    ];
    for (what, extra, want_log, named) in cases {
        let grpc = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["--iface", "1@lo", "--grpc", &grpc, "--run-dir", rd];
        args.extend(extra);
        let out = run("start.sh", &args, SYSTEM_PATH, &env);
        assert!(out.status.success(), "{what}: {out:?}");
        let argv = fs::read_to_string(s.path("argv")).unwrap();
        let got: Vec<&str> = argv
            .lines()
            .skip_while(|a| *a != "--log-file")
            .take_while(|a| *a != "--log-level")
            .collect();
        assert_eq!(got, want_log, "{what}: {argv}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        match named {
            Some(file) => {
                assert!(
                    stdout.contains(&format!("log {}", file.display())),
                    "{what}: {stdout}"
                );
                assert_eq!(fs::read_to_string(file).unwrap().trim(), FAKE_LOG_LINE);
            }
            None => assert!(stdout.contains("log off"), "{what}: {stdout}"),
        }
        let stop = run("stop.sh", &["--run-dir", rd], SYSTEM_PATH, &[]);
        assert!(stop.status.success(), "{what}: {stop:?}");
    }
}
