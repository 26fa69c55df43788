//! `beamer switch`: the software switch on pcap files or live interfaces.
//!
//! ```text
//! beamer switch --tables tables.toml --pcap-in in.pcap --pcap-out out.pcapng
//! beamer switch --tables tables.toml --port 1=veth0 --port 2=veth1 [--p4rt]
//! ```
//!
//! Counters (per VIP entry, per non-zero bucket entry, per drop reason,
//! per port) are printed on stdout at the end of the capture, on SIGINT or
//! SIGTERM, and, while running, on SIGUSR1. See
//! `beamer_softswitch::io::pcap` for how the egress port is kept in the
//! output files.

use anyhow::{Context, bail};
use beamer_pipeline::{PipelineParams, Target};
use beamer_softswitch::io::afpacket::{AfPacketBackend, PortSpec, RingConfig};
use beamer_softswitch::io::pcap::{
    FrameSink, MAX_PCAP_FRAME, OutputFormat, PcapBackend, PcapInput, PcapNgSink, PcapSink, PortDir,
};
use beamer_softswitch::io::report::{CounterReport, IoCounters, IoReading, ReportOptions};
use beamer_softswitch::p4rt;
use beamer_softswitch::tablefile::TableFile;
use beamer_softswitch::{Batch, BatchSize, Switch};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Run the software switch.
#[derive(clap::Args, Debug)]
#[command(group(
    clap::ArgGroup::new("io").required(true).args(["pcap_in", "ports"])
))]
#[command(group(
    clap::ArgGroup::new("pcap_output").multiple(true).args(["pcap_out", "pcap_out_dir"])
))]
pub struct Args {
    /// Table file (TOML, see beamer_softswitch::tablefile) that fills the
    /// tables at start. Required unless --p4rt is given.
    #[arg(long, value_name = "FILE")]
    tables: Option<PathBuf>,

    /// Read frames from this capture (pcap or pcapng, Ethernet).
    #[arg(long, value_name = "FILE", requires = "pcap_output")]
    pcap_in: Option<PathBuf>,

    /// Write forwarded frames here: pcapng with one interface per egress
    /// port (named portN) if the name ends in .pcapng, classic pcap
    /// otherwise.
    #[arg(long, value_name = "FILE", requires = "pcap_in")]
    pcap_out: Option<PathBuf>,

    /// Write forwarded frames to DIR/portN.pcap, one classic pcap per
    /// egress port.
    #[arg(long, value_name = "DIR", requires = "pcap_in")]
    pcap_out_dir: Option<PathBuf>,

    /// The ingress port of the frames of --pcap-in.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "pcap_in")]
    ingress_port: u16,

    /// A live port: P4 port number = Linux interface (AF_PACKET). Repeat
    /// for more ports.
    #[arg(long = "port", value_name = "N=IFACE", conflicts_with = "pcap_in")]
    ports: Vec<PortSpec>,

    /// Data-path threads for live ports (they share each port through a
    /// fanout group).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=64),
        conflicts_with = "pcap_in"
    )]
    workers: u16,

    /// Packets per batch (1 to 256).
    #[arg(long, value_name = "N", default_value = "32")]
    batch: BatchSize,

    /// Largest received frame on live ports, in bytes (longer ones are
    /// counted as oversize and skipped).
    #[arg(long, value_name = "BYTES", default_value_t = 2048, conflicts_with = "pcap_in",
          value_parser = clap::value_parser!(u32).range(64..=65_535)
    )]
    max_frame: u32,

    /// Send with PACKET_QDISC_BYPASS (faster; tcpdump on the interface no
    /// longer sees the frames sent).
    #[arg(long, conflicts_with = "pcap_in")]
    qdisc_bypass: bool,

    /// Serve P4Runtime on ADDR (default 0.0.0.0:9559), so a controller can
    /// write the tables and read the counters. With --pcap-in it serves
    /// until the capture ends: give a FIFO to feed frames after the
    /// controller has written the tables.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = p4rt::DEFAULT_ADDR
    )]
    p4rt: Option<SocketAddr>,

    /// The P4Runtime device id.
    #[arg(long, value_name = "ID", default_value_t = p4rt::DEFAULT_DEVICE_ID, requires = "p4rt")]
    device_id: u64,

    /// Most non-zero bucket entries listed one by one in the counters (the
    /// busiest; the rest are summed).
    #[arg(long, value_name = "N", default_value_t = 32)]
    show_buckets: usize,
}

/// Runs the switch until the capture ends or a signal stops it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let switch = match &args.tables {
        Some(path) => {
            let file = TableFile::load(path)?;
            file.build()
                .with_context(|| format!("{}: loading the tables", path.display()))?
        }
        None if args.p4rt.is_some() => Switch::new(PipelineParams::default())?,
        None => bail!("--tables is required (unless --p4rt lets a controller fill the tables)"),
    };
    signals::install()?;
    let report = ReportOptions {
        max_buckets: args.show_buckets,
    };
    let server = match args.p4rt {
        Some(addr) => {
            let mut b = p4rt::builder(switch.clone()).device_id(args.device_id);
            if args.tables.is_some() {
                // The entries of the table file stay, and a controller can
                // read and write them at once.
                let p4info =
                    beamer_pipeline::p4rt::expected_p4info(&switch.params(), Target::V1model);
                b = b.preinstalled(p4info);
            }
            let handle = b.spawn(addr).context("starting the P4Runtime server")?;
            eprintln!("beamer switch: P4Runtime on {}", handle.local_addr());
            Some(handle)
        }
        None => None,
    };
    let result = match &args.pcap_in {
        Some(_) => run_pcap(&args, &switch, &report),
        None => run_live(&args, &switch, &report),
    };
    if let Some(s) = server {
        s.shutdown().context("stopping the P4Runtime server")?;
    }
    result
}

/// One data-path thread and what it reports.
struct Running {
    threads: Vec<JoinHandle<anyhow::Result<u64>>>,
    io: Vec<Arc<IoCounters>>,
    stop: Arc<AtomicBool>,
}

fn run_pcap(args: &Args, switch: &Switch, report: &ReportOptions) -> anyhow::Result<()> {
    let path = args.pcap_in.as_deref().unwrap_or_else(|| unreachable!());
    let input = PcapInput::open(path, args.ingress_port)?;
    let res = input.ts_resolution();
    let mut sinks: Vec<Box<dyn FrameSink>> = Vec::new();
    if let Some(out) = &args.pcap_out {
        sinks.push(match OutputFormat::for_path(out) {
            OutputFormat::PcapNg => Box::new(PcapNgSink::<std::fs::File>::create(out)?),
            OutputFormat::Pcap => Box::new(PcapSink::<std::fs::File>::create(out, res)?),
        });
    }
    if let Some(dir) = &args.pcap_out_dir {
        sinks.push(Box::new(PortDir::new(dir, res)?));
    }
    let name = match path.file_name() {
        Some(n) => format!("{} (file)", n.to_string_lossy()),
        None => path.display().to_string(),
    };
    let mut backend = PcapBackend::new(input, &name, sinks);
    let stop = Arc::new(AtomicBool::new(false));
    let io = vec![backend.counters()];
    let mut worker = switch.worker();
    let batch_size = args.batch;
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("switch-pcap".into())
        .spawn(move || -> anyhow::Result<u64> {
            let mut batch = Batch::new(batch_size, MAX_PCAP_FRAME);
            let n = beamer_softswitch::io::run(&mut worker, &mut backend, &mut batch, &stop2);
            // Write out what was forwarded, also after a read error.
            let finished = backend.finish();
            let n = n?;
            finished?;
            Ok(n)
        })?;
    supervise(
        Running {
            threads: vec![thread],
            io,
            stop,
        },
        switch,
        report,
    )
}

fn run_live(args: &Args, switch: &Switch, report: &ReportOptions) -> anyhow::Result<()> {
    let cfg = RingConfig {
        qdisc_bypass: args.qdisc_bypass,
        max_frame: args.max_frame as usize,
        ..RingConfig::default()
    };
    let workers = usize::from(args.workers);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut io = Vec::new();
    for w in 0..workers {
        // Open every port before starting, so a bad interface fails here.
        let mut backend = AfPacketBackend::open(&args.ports, &cfg, workers, args.batch)?;
        io.push(backend.counters());
        let mut worker = switch.worker();
        let stop = Arc::clone(&stop);
        threads.push(
            std::thread::Builder::new()
                .name(format!("switch-{w}"))
                .spawn(move || -> anyhow::Result<u64> {
                    let n = backend.run(&mut worker, &stop)?;
                    backend.update_drop_counts();
                    Ok(n)
                })?,
        );
    }
    let names: Vec<String> = args
        .ports
        .iter()
        .map(|p| format!("{}={}", p.port, p.interface))
        .collect();
    eprintln!(
        "beamer switch: forwarding on {} with {workers} worker(s), batch {}; SIGUSR1 prints the counters",
        names.join(", "),
        args.batch
    );
    supervise(Running { threads, io, stop }, switch, report)
}

/// Waits for the workers, printing the counters on SIGUSR1; stops them on
/// SIGINT/SIGTERM; prints the counters at the end.
fn supervise(run: Running, switch: &Switch, report: &ReportOptions) -> anyhow::Result<()> {
    let mut why = "end of input";
    loop {
        if signals::take_usr1() {
            print_counters("SIGUSR1", switch, &run.io, report);
        }
        if let Some(sig) = signals::take_stop() {
            why = sig;
            run.stop.store(true, Ordering::Relaxed);
        }
        if run.threads.iter().all(|t| t.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut errors = Vec::new();
    for t in run.threads {
        match t.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(anyhow::anyhow!("a data-path thread panicked")),
        }
    }
    if !errors.is_empty() {
        why = "error";
    }
    print_counters(why, switch, &run.io, report);
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_counters(why: &str, switch: &Switch, io: &[Arc<IoCounters>], report: &ReportOptions) {
    let counters = CounterReport::collect(switch, report);
    let mut ports = IoReading::default();
    for c in io {
        ports.add(&c.read());
    }
    let mut out = std::io::stdout().lock();
    // A closed stdout is no reason to stop forwarding.
    let _ = writeln!(out, "=== beamer switch counters ({why}) ===");
    let _ = write!(out, "{counters}");
    let _ = writeln!(out);
    let _ = write!(out, "{ports}");
    let _ = writeln!(out, "===");
    let _ = out.flush();
}

/// SIGINT, SIGTERM and SIGUSR1 as flags the supervisor polls.
mod signals {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    static USR1: AtomicBool = AtomicBool::new(false);
    static STOP: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(sig: libc::c_int) {
        // Only async-signal-safe work here: store to atomics.
        if sig == libc::SIGUSR1 {
            USR1.store(true, Ordering::Relaxed);
        } else {
            STOP.store(sig, Ordering::Relaxed);
        }
    }

    /// Installs the handlers.
    pub fn install() -> std::io::Result<()> {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
            // SAFETY: an all-zero sigaction is valid; the handler only
            // touches atomics, which is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// True once per SIGUSR1.
    pub fn take_usr1() -> bool {
        USR1.swap(false, Ordering::Relaxed)
    }

    /// The stop signal received, if any (once).
    pub fn take_stop() -> Option<&'static str> {
        match STOP.swap(0, Ordering::Relaxed) {
            0 => None,
            libc::SIGINT => Some("SIGINT"),
            _ => Some("SIGTERM"),
        }
    }
}
