//! pcap and pcapng files as a [`Backend`]: frames in from a capture, the
//! forwarded frames out to one or more captures.
//!
//! Reading and writing go through the `pcap-file` crate. The input may be
//! classic pcap (either byte order, micro- or nanosecond timestamps) or
//! pcapng, with Ethernet link type; every frame enters on one ingress port
//! ([`PcapInput::ingress_port`]; the pipeline does not look at it).
//!
//! Dropped frames are not written. Each written frame keeps the timestamp
//! of the frame it came from, so a frame of the output lines up with its
//! input frame in Wireshark. The egress port is kept in one of two ways:
//!
//! - [`OutputFormat::PcapNg`] (a `--pcap-out` path ending in `.pcapng`):
//!   one file, one pcapng interface per egress port, named `port<N>`, made
//!   when the first frame leaves by that port. Wireshark shows it as
//!   `frame.interface_name` (filter: `frame.interface_name == "port2"`, or
//!   add it as a column), and the frames stay in processing order.
//! - [`OutputFormat::Pcap`] (any other `--pcap-out` path): classic pcap,
//!   which has no place for the port; every forwarded frame, in order.
//! - [`PortDir`] (`--pcap-out-dir DIR`): one classic pcap per egress port,
//!   `DIR/port<N>.pcap`, for tools that read only classic pcap.
//!
//! Classic outputs use the input's timestamp resolution; pcapng outputs
//! use nanoseconds. All outputs are little-endian, so the same input gives
//! the same bytes on every machine.

use super::Backend;
use super::report::IoCounters;
use crate::packet::{Batch, MAX_GROWTH};
use beamer_pipeline::schema::SWITCH_PORT_BITS;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The longest input frame a batch slot holds in pcap runs: the largest
/// IPv4 packet with an Ethernet header and two VLAN tags, rounded up.
/// Longer frames are skipped and counted as oversize.
pub const MAX_PCAP_FRAME: usize = 65_600;

/// The snap length written in output headers: room for the largest input
/// frame plus the outer header.
pub const OUTPUT_SNAPLEN: u32 = (MAX_PCAP_FRAME + MAX_GROWTH) as u32;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// A capture could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PcapIoError {
    /// A file could not be opened, created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The input is not a valid pcap or pcapng file.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// Where (`frame N`, counting from 1 as Wireshark does) and what
        /// the parser said.
        message: String,
    },
    /// The capture's link type is not Ethernet.
    #[error("{path}: link type {linktype} is not supported (only Ethernet)")]
    LinkType {
        /// The file.
        path: String,
        /// The link type found.
        linktype: String,
    },
}

impl From<PcapIoError> for std::io::Error {
    fn from(e: PcapIoError) -> Self {
        match e {
            PcapIoError::Io { source, path } => {
                std::io::Error::new(source.kind(), format!("{path}: {source}"))
            }
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

/// How a `--pcap-out` file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Classic pcap: all forwarded frames, the egress port is not kept.
    Pcap,
    /// pcapng with one interface per egress port.
    PcapNg,
}

impl OutputFormat {
    /// pcapng for a path ending in `.pcapng`, classic pcap otherwise.
    pub fn for_path(path: &Path) -> OutputFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => OutputFormat::PcapNg,
            _ => OutputFormat::Pcap,
        }
    }
}

/// One frame read from a capture.
#[derive(Debug, Clone, Copy)]
pub struct InFrame<'a> {
    /// When it was captured.
    pub timestamp: Duration,
    /// Its length on the wire (at least `data.len()`).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Per-interface facts of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct NgInterface {
    ethernet: bool,
    /// Nanoseconds per timestamp unit, as a rational (num / den).
    unit: (u64, u64),
}

impl NgInterface {
    fn of(idb: &InterfaceDescriptionBlock<'_>) -> NgInterface {
        // if_tsresol: 10^-n seconds, or 2^-n with the high bit set;
        // microseconds when absent.
        let tsresol = idb
            .options
            .iter()
            .find_map(|o| match o {
                InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                _ => None,
            })
            .unwrap_or(6);
        let unit = if tsresol & 0x80 == 0 {
            let n = u32::from(tsresol);
            if n <= 9 {
                (10u64.pow(9 - n), 1)
            } else {
                (1, 10u64.saturating_pow(n - 9))
            }
        } else {
            (1_000_000_000, 1u64 << (tsresol & 0x7f).min(63))
        };
        NgInterface {
            ethernet: idb.linktype == DataLink::ETHERNET,
            unit,
        }
    }

    fn timestamp(&self, raw: Duration) -> Duration {
        // pcap-file hands over the raw 64-bit timestamp as nanoseconds.
        let units = raw.as_nanos();
        let nanos = units * u128::from(self.unit.0) / u128::from(self.unit.1);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

enum Reader<R: Read> {
    Pcap(PcapReader<R>),
    PcapNg {
        reader: PcapNgReader<R>,
        interfaces: Vec<NgInterface>,
        /// The current frame, copied out of the block (the borrow checker
        /// cannot return a block's bytes from inside the block loop).
        frame: Vec<u8>,
    },
}

/// A pcap or pcapng file read frame by frame.
pub struct PcapInput<R: Read> {
    reader: Reader<R>,
    name: String,
    ingress_port: u16,
    frames: u64,
    ts_resolution: TsResolution,
}

type Chained<R> = std::io::Chain<Cursor<[u8; 4]>, R>;

impl PcapInput<Chained<std::io::BufReader<File>>> {
    /// Opens the capture at `path`.
    pub fn open(path: &Path, ingress_port: u16) -> Result<Self, PcapIoError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| PcapIoError::Io {
            path: name.clone(),
            source,
        })?;
        Self::new(std::io::BufReader::new(file), &name, ingress_port)
    }
}

impl<R: Read> PcapInput<Chained<R>> {
    /// Reads a capture from `reader`; `name` is used in errors.
    pub fn new(mut reader: R, name: &str, ingress_port: u16) -> Result<Self, PcapIoError> {
        let mut magic = [0u8; 4];
        reader
            .read_exact(&mut magic)
            .map_err(|e| PcapIoError::Format {
                path: name.into(),
                message: format!("not a pcap or pcapng file ({e})"),
            })?;
        let reader = Cursor::new(magic).chain(reader);
        let format_err = |e: PcapError| PcapIoError::Format {
            path: name.into(),
            message: format!("not a pcap or pcapng file ({e})"),
        };
        let (reader, ts_resolution) = if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(reader).map_err(format_err)?;
            let r = Reader::PcapNg {
                reader,
                interfaces: Vec::new(),
                frame: Vec::with_capacity(MAX_PCAP_FRAME),
            };
            (r, TsResolution::NanoSecond)
        } else {
            let reader = PcapReader::new(reader).map_err(format_err)?;
            let header = reader.header();
            if header.datalink != DataLink::ETHERNET {
                return Err(PcapIoError::LinkType {
                    path: name.into(),
                    linktype: format!("{:?}", header.datalink),
                });
            }
            (Reader::Pcap(reader), header.ts_resolution)
        };
        Ok(PcapInput {
            reader,
            name: name.into(),
            ingress_port,
            frames: 0,
            ts_resolution,
        })
    }
}

impl<R: Read> PcapInput<R> {
    /// The port every frame of this input enters on.
    pub fn ingress_port(&self) -> u16 {
        self.ingress_port
    }

    /// The input's timestamp resolution (nanoseconds for pcapng).
    pub fn ts_resolution(&self) -> TsResolution {
        self.ts_resolution
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The next frame, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<InFrame<'_>>, PcapIoError> {
        let (name, frames) = (&self.name, &mut self.frames);
        let err = |read: u64, message: String| PcapIoError::Format {
            path: name.clone(),
            message: format!("frame {}: {message}", read + 1),
        };
        match &mut self.reader {
            Reader::Pcap(reader) => match reader.next_raw_packet() {
                None => Ok(None),
                Some(Err(e)) => Err(err(*frames, e.to_string())),
                Some(Ok(p)) => {
                    let nanos = match self.ts_resolution {
                        TsResolution::MicroSecond => u64::from(p.ts_frac) * 1000,
                        TsResolution::NanoSecond => u64::from(p.ts_frac),
                    };
                    *frames += 1;
                    let data: &[u8] = match p.data {
                        Cow::Borrowed(d) => d,
                        // The reader lends its buffer; it never copies.
                        Cow::Owned(_) => return Err(err(*frames, "unexpected copy".into())),
                    };
                    Ok(Some(InFrame {
                        timestamp: Duration::from_secs(u64::from(p.ts_sec))
                            + Duration::from_nanos(nanos),
                        orig_len: p.orig_len.max(data.len() as u32),
                        data,
                    }))
                }
            },
            Reader::PcapNg {
                reader,
                interfaces,
                frame,
            } => loop {
                let block = match reader.next_block() {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(err(*frames, e.to_string())),
                    Some(Ok(b)) => b,
                };
                match block {
                    Block::SectionHeader(_) => interfaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let iface = NgInterface::of(&idb);
                        if !iface.ethernet {
                            return Err(PcapIoError::LinkType {
                                path: name.clone(),
                                linktype: format!(
                                    "{:?} (interface {})",
                                    idb.linktype,
                                    interfaces.len()
                                ),
                            });
                        }
                        interfaces.push(iface);
                    }
                    Block::EnhancedPacket(epb) => {
                        let Some(iface) = interfaces.get(epb.interface_id as usize) else {
                            return Err(err(
                                *frames,
                                format!("unknown interface {}", epb.interface_id),
                            ));
                        };
                        let timestamp = iface.timestamp(epb.timestamp);
                        frame.clear();
                        frame.extend_from_slice(&epb.data);
                        *frames += 1;
                        return Ok(Some(InFrame {
                            timestamp,
                            orig_len: epb.original_len.max(frame.len() as u32),
                            data: frame,
                        }));
                    }
                    Block::SimplePacket(spb) => {
                        if interfaces.is_empty() {
                            return Err(err(*frames, "simple packet before any interface".into()));
                        }
                        frame.clear();
                        frame.extend_from_slice(&spb.data);
                        *frames += 1;
                        return Ok(Some(InFrame {
                            timestamp: Duration::ZERO,
                            orig_len: spb.original_len.max(frame.len() as u32),
                            data: frame,
                        }));
                    }
                    // Statistics, name resolution, journal and unknown
                    // blocks carry no frame.
                    _ => {}
                }
            },
        }
    }
}

/// Where forwarded frames are written.
pub trait FrameSink: Send {
    /// Writes one forwarded frame that left by `port`.
    fn write(
        &mut self,
        port: u16,
        timestamp: Duration,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapIoError>;

    /// Writes out what is buffered; nothing may be written afterwards.
    fn finish(&mut self) -> Result<(), PcapIoError>;
}

fn io_err(path: &str) -> impl Fn(std::io::Error) -> PcapIoError + '_ {
    move |source| PcapIoError::Io {
        path: path.into(),
        source,
    }
}

fn pcap_err(path: &str, e: PcapError) -> PcapIoError {
    let source = match e {
        PcapError::IoError(source) => source,
        other => std::io::Error::other(other.to_string()),
    };
    PcapIoError::Io {
        path: path.into(),
        source,
    }
}

fn finished(path: &str) -> PcapIoError {
    PcapIoError::Io {
        path: path.into(),
        source: std::io::Error::other("written after the output was finished"),
    }
}

/// A classic pcap output: every frame, whatever its port.
pub struct PcapSink<W: Write> {
    writer: Option<PcapWriter<W>>,
    name: String,
}

impl<W: Write + Send> PcapSink<W> {
    /// Writes the file header to `w`; `name` is used in errors.
    pub fn new(w: W, name: &str, ts_resolution: TsResolution) -> Result<Self, PcapIoError> {
        let header = PcapHeader {
            snaplen: OUTPUT_SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(w, header).map_err(|e| pcap_err(name, e))?;
        Ok(PcapSink {
            writer: Some(writer),
            name: name.into(),
        })
    }

    /// Creates the file at `path`.
    pub fn create(
        path: &Path,
        ts_resolution: TsResolution,
    ) -> Result<PcapSink<BufWriter<File>>, PcapIoError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(io_err(&name))?;
        PcapSink::new(BufWriter::new(file), &name, ts_resolution)
    }

    /// The inner writer, unless finished.
    pub fn into_inner(self) -> Option<W> {
        self.writer.map(PcapWriter::into_writer)
    }
}

impl<W: Write + Send> FrameSink for PcapSink<W> {
    fn write(
        &mut self,
        _port: u16,
        timestamp: Duration,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapIoError> {
        let writer = self.writer.as_mut().ok_or_else(|| finished(&self.name))?;
        writer
            .write_packet(&PcapPacket::new(timestamp, orig_len, data))
            .map(|_| ())
            .map_err(|e| pcap_err(&self.name, e))
    }

    fn finish(&mut self) -> Result<(), PcapIoError> {
        match self.writer.take() {
            Some(w) => w.into_writer().flush().map_err(io_err(&self.name)),
            None => Ok(()),
        }
    }
}

/// A pcapng output: one interface per egress port.
pub struct PcapNgSink<W: Write> {
    writer: PcapNgWriter<W>,
    name: String,
    /// port -> interface id; u32::MAX for none yet.
    interface_of: Box<[u32]>,
    next_interface: u32,
}

impl<W: Write + Send> PcapNgSink<W> {
    /// Writes the section header to `w`; `name` is used in errors.
    pub fn new(w: W, name: &str) -> Result<Self, PcapIoError> {
        let writer =
            PcapNgWriter::with_endianness(w, Endianness::Little).map_err(|e| pcap_err(name, e))?;
        Ok(PcapNgSink {
            writer,
            name: name.into(),
            interface_of: vec![u32::MAX; 1 << SWITCH_PORT_BITS].into_boxed_slice(),
            next_interface: 0,
        })
    }

    /// Creates the file at `path`.
    pub fn create(path: &Path) -> Result<PcapNgSink<BufWriter<File>>, PcapIoError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(io_err(&name))?;
        PcapNgSink::new(BufWriter::new(file), &name)
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }

    fn interface(&mut self, port: u16) -> Result<u32, PcapIoError> {
        let Some(slot) = self.interface_of.get_mut(usize::from(port)) else {
            return Err(PcapIoError::Io {
                path: self.name.clone(),
                source: std::io::Error::other(format!("egress port {port} out of range")),
            });
        };
        if *slot != u32::MAX {
            return Ok(*slot);
        }
        let id = self.next_interface;
        *slot = id;
        self.next_interface += 1;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: OUTPUT_SNAPLEN,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(format!("port{port}"))),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                    "beamer switch egress port {port}"
                ))),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        self.writer
            .write_pcapng_block(idb)
            .map_err(|e| pcap_err(&self.name, e))?;
        Ok(id)
    }
}

impl<W: Write + Send> FrameSink for PcapNgSink<W> {
    fn write(
        &mut self,
        port: u16,
        timestamp: Duration,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapIoError> {
        let interface_id = self.interface(port)?;
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp,
            original_len: orig_len,
            data: Cow::Borrowed(data),
            options: Vec::new(),
        };
        self.writer
            .write_pcapng_block(epb)
            .map(|_| ())
            .map_err(|e| pcap_err(&self.name, e))
    }

    fn finish(&mut self) -> Result<(), PcapIoError> {
        self.writer.get_mut().flush().map_err(io_err(&self.name))
    }
}

/// One classic pcap per egress port in a directory: `port<N>.pcap`, made
/// when the first frame leaves by port N.
pub struct PortDir {
    dir: PathBuf,
    ts_resolution: TsResolution,
    files: Vec<(u16, PcapSink<BufWriter<File>>)>,
}

impl PortDir {
    /// Outputs in `dir`, which is created if missing.
    pub fn new(dir: &Path, ts_resolution: TsResolution) -> Result<Self, PcapIoError> {
        std::fs::create_dir_all(dir).map_err(io_err(&dir.display().to_string()))?;
        Ok(PortDir {
            dir: dir.to_path_buf(),
            ts_resolution,
            files: Vec::new(),
        })
    }

    /// The file frames leaving by `port` go to.
    pub fn path_of(dir: &Path, port: u16) -> PathBuf {
        dir.join(format!("port{port}.pcap"))
    }
}

impl FrameSink for PortDir {
    fn write(
        &mut self,
        port: u16,
        timestamp: Duration,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapIoError> {
        let i = match self.files.iter().position(|(p, _)| *p == port) {
            Some(i) => i,
            None => {
                let path = Self::path_of(&self.dir, port);
                let sink = PcapSink::<BufWriter<File>>::create(&path, self.ts_resolution)?;
                self.files.push((port, sink));
                self.files.len() - 1
            }
        };
        self.files[i].1.write(port, timestamp, orig_len, data)
    }

    fn finish(&mut self) -> Result<(), PcapIoError> {
        self.files.iter_mut().try_for_each(|(_, s)| s.finish())
    }
}

/// A pcap run: frames from a [`PcapInput`], forwarded frames to every
/// [`FrameSink`].
pub struct PcapBackend<R: Read> {
    input: PcapInput<R>,
    sinks: Vec<Box<dyn FrameSink>>,
    /// Timestamp and (wire length - captured length) of each frame of the
    /// batch in flight, by slot.
    meta: Vec<(Duration, u32)>,
    counters: Arc<IoCounters>,
    done: bool,
}

impl<R: Read> PcapBackend<R> {
    /// A run from `input` to `sinks`; `input_name` names the input in the
    /// I/O counters.
    pub fn new(input: PcapInput<R>, input_name: &str, sinks: Vec<Box<dyn FrameSink>>) -> Self {
        let counters = Arc::new(IoCounters::new(vec![(
            input.ingress_port(),
            input_name.to_string(),
        )]));
        PcapBackend {
            input,
            sinks,
            meta: Vec::with_capacity(crate::BatchSize::MAX.get()),
            counters,
            done: false,
        }
    }

    /// The I/O counters, readable while the run goes on.
    pub fn counters(&self) -> Arc<IoCounters> {
        Arc::clone(&self.counters)
    }

    /// Frames read from the input so far.
    pub fn frames_read(&self) -> u64 {
        self.input.frames()
    }

    /// Flushes every output. Call once at the end.
    pub fn finish(&mut self) -> Result<(), PcapIoError> {
        self.sinks.iter_mut().try_for_each(|s| s.finish())
    }
}

impl<R: Read> Backend for PcapBackend<R> {
    fn recv(&mut self, batch: &mut Batch) -> std::io::Result<usize> {
        self.meta.clear();
        let port = self.input.ingress_port();
        let (mut n, mut bytes, mut oversize) = (0usize, 0u64, 0u64);
        while !batch.is_full() && !self.done {
            let Some(frame) = self.input.next_frame()? else {
                self.done = true;
                break;
            };
            if frame.data.len() > batch.max_frame() {
                oversize += 1;
                continue;
            }
            batch
                .push(frame.data, port)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let extra = frame.orig_len - frame.data.len() as u32;
            self.meta.push((frame.timestamp, extra));
            n += 1;
            bytes += frame.data.len() as u64;
        }
        if let Some(c) = self.counters.ports.first() {
            c.rx.add(n as u64, bytes);
        }
        self.counters
            .oversize
            .fetch_add(oversize, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn send(&mut self, batch: &Batch) -> std::io::Result<()> {
        for (p, &(timestamp, extra)) in batch.iter().zip(&self.meta) {
            let Some(port) = p.verdict.and_then(|v| v.egress_port()) else {
                continue;
            };
            let orig_len = (p.frame.len() as u32).saturating_add(extra);
            for sink in &mut self.sinks {
                sink.write(port, timestamp, orig_len, p.frame)?;
            }
            self.counters.egress(port, 1, p.frame.len() as u64);
        }
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchSize;
    use crate::io::MemoryBackend;
    use crate::tablefile::TableFile;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    /// A `Write` whose bytes stay readable after the sink is boxed.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }
    }

    const TABLES: &str = r#"
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
round_robin = ["10.1.0.1"]
[[route]]
prefix = "10.1.0.0/24"
port = 2
dst_mac = "02:00:00:00:02:01"
src_mac = "02:00:00:00:00:02"
[[route]]
prefix = "198.51.100.0/24"
port = 1
dst_mac = "02:00:00:00:01:01"
src_mac = "02:00:00:00:00:01"
"#;

    /// An IPv4 frame: `proto` from `src` to `dst`, with a 20-byte L4
    /// header whose ports are `sport` and 80.
    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[46] = 0x50;
        f
    }

    /// to VIP (-> port 2), routed ICMP (-> port 1), no route (dropped).
    fn frames() -> Vec<Vec<u8>> {
        vec![
            frame([198, 51, 100, 7], [192, 0, 2, 10], 6, 1234),
            frame([10, 1, 0, 1], [198, 51, 100, 7], 1, 0),
            frame([10, 1, 0, 1], [203, 0, 113, 1], 1, 0),
        ]
    }

    fn input_pcap(frames: &[Vec<u8>], res: TsResolution) -> Vec<u8> {
        let header = PcapHeader {
            ts_resolution: res,
            endianness: Endianness::Big,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        for (i, f) in frames.iter().enumerate() {
            let ts = Duration::new(1_700_000_000 + i as u64, 123_456_000);
            // The wire frame was 4 bytes longer than captured.
            w.write_packet(&PcapPacket::new(ts, f.len() as u32 + 4, f))
                .unwrap();
        }
        w.into_writer()
    }

    /// Runs `input` through a switch built from TABLES.
    fn run(input: &[u8], sinks: Vec<Box<dyn FrameSink>>) -> (u64, crate::Switch) {
        let switch = TableFile::parse(TABLES).unwrap().build().unwrap();
        let mut worker = switch.worker();
        let input = PcapInput::new(input, "in", 1).unwrap();
        let mut backend = PcapBackend::new(input, "in", sinks);
        let mut batch = Batch::new(BatchSize::new(2).unwrap(), MAX_PCAP_FRAME);
        let n = crate::io::run(
            &mut worker,
            &mut backend,
            &mut batch,
            &AtomicBool::new(false),
        )
        .unwrap();
        backend.finish().unwrap();
        let io = backend.counters().read();
        assert_eq!(io.ports[0].rx.packets, n);
        (n, switch)
    }

    /// What the pipeline makes of `frames()`, through the memory backend.
    fn expected() -> Vec<(u16, Vec<u8>)> {
        let switch = TableFile::parse(TABLES).unwrap().build().unwrap();
        let mut worker = switch.worker();
        let mut mem = MemoryBackend::with_input(frames().into_iter().map(|f| (1, f)));
        let mut batch = Batch::with_defaults();
        crate::io::run(&mut worker, &mut mem, &mut batch, &AtomicBool::new(false)).unwrap();
        mem.take_output()
    }

    #[test]
    fn classic_pcap_round_trip_keeps_timestamps_and_drops_dropped() {
        for res in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
            let out = Shared::default();
            let sink = PcapSink::new(out.clone(), "out", res).unwrap();
            let (n, switch) = run(&input_pcap(&frames(), res), vec![Box::new(sink)]);
            assert_eq!(n, 3);
            assert_eq!(switch.totals().forwarded.packets, 2);

            let bytes = out.bytes();
            let mut r = PcapReader::new(&bytes[..]).unwrap();
            assert_eq!(r.header().endianness, Endianness::Little);
            assert_eq!(r.header().ts_resolution, res);
            let want = expected();
            let mut got = Vec::new();
            while let Some(p) = r.next_packet() {
                got.push(p.unwrap().into_owned());
            }
            assert_eq!(got.len(), 2, "the no-route frame is not written");
            for (i, (p, (_, f))) in got.iter().zip(&want).enumerate() {
                assert_eq!(&p.data[..], &f[..]);
                // Frames 0 and 1 of the input were forwarded.
                assert_eq!(
                    p.timestamp,
                    Duration::new(1_700_000_000 + i as u64, 123_456_000)
                );
                assert_eq!(p.orig_len as usize, f.len() + 4);
            }
        }
    }

    #[test]
    fn pcapng_output_has_one_interface_per_egress_port() {
        let out = Shared::default();
        let sink = PcapNgSink::new(out.clone(), "out").unwrap();
        run(
            &input_pcap(&frames(), TsResolution::MicroSecond),
            vec![Box::new(sink)],
        );

        let bytes = out.bytes();
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let mut names = Vec::new();
        let mut packets = Vec::new();
        while let Some(b) = r.next_block() {
            match b.unwrap() {
                Block::InterfaceDescription(idb) => names.push(
                    idb.options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .unwrap(),
                ),
                Block::EnhancedPacket(epb) => {
                    packets.push((epb.interface_id, epb.timestamp, epb.data.to_vec()))
                }
                _ => {}
            }
        }
        // The VIP packet leaves by port 2 first, then the routed one by 1.
        assert_eq!(names, ["port2", "port1"]);
        let want = expected();
        assert_eq!(want.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(packets.len(), 2);
        assert_eq!((packets[0].0, &packets[0].2), (0, &want[0].1));
        assert_eq!((packets[1].0, &packets[1].2), (1, &want[1].1));
        // if_tsresol 9: the raw value is nanoseconds.
        assert_eq!(packets[1].1, Duration::new(1_700_000_001, 123_456_000));

        // And it reads back as an input, with the same timestamps.
        let mut back = PcapInput::new(&bytes[..], "back", 1).unwrap();
        let f = back.next_frame().unwrap().unwrap();
        assert_eq!(f.timestamp, Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(f.data, &want[0].1[..]);
    }

    #[test]
    fn port_dir_writes_one_file_per_port() {
        let dir = std::env::temp_dir().join(format!("beamer-portdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sink = PortDir::new(&dir, TsResolution::MicroSecond).unwrap();
        run(
            &input_pcap(&frames(), TsResolution::MicroSecond),
            vec![Box::new(sink)],
        );
        let want = expected();
        for (port, f) in &want {
            let file = File::open(PortDir::path_of(&dir, *port)).unwrap();
            let mut r = PcapReader::new(file).unwrap();
            assert_eq!(&r.next_packet().unwrap().unwrap().data[..], &f[..]);
            assert!(r.next_packet().is_none());
        }
        assert!(!PortDir::path_of(&dir, 3).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pcapng_timestamp_resolutions() {
        let idb = |r: Option<u8>| InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: r
                .map(InterfaceDescriptionOption::IfTsResol)
                .into_iter()
                .collect(),
        };
        let raw = Duration::from_nanos(1_500);
        // Default: microseconds.
        assert_eq!(
            NgInterface::of(&idb(None)).timestamp(raw),
            Duration::from_micros(1_500)
        );
        assert_eq!(NgInterface::of(&idb(Some(9))).timestamp(raw), raw);
        assert_eq!(
            NgInterface::of(&idb(Some(3))).timestamp(raw),
            Duration::from_millis(1_500)
        );
        // 2^-10 s units: 1500 / 1024 s.
        assert_eq!(
            NgInterface::of(&idb(Some(0x80 | 10))).timestamp(raw),
            Duration::from_nanos(1_500 * 1_000_000_000 / 1024)
        );
    }

    #[test]
    fn bad_input_is_an_error_naming_the_file() {
        let e = PcapInput::new(&b"hello world"[..], "junk.pcap", 1)
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("junk.pcap:"), "{e}");
        let e = PcapInput::new(&b"ab"[..], "short.pcap", 1).err().unwrap();
        assert!(e.to_string().contains("not a pcap"), "{e}");

        // A record cut short: the first frame reads, the second is an error.
        let mut bytes = input_pcap(&frames(), TsResolution::MicroSecond);
        bytes.truncate(bytes.len() - 10);
        let mut input = PcapInput::new(&bytes[..], "cut.pcap", 1).unwrap();
        assert!(input.next_frame().unwrap().is_some());
        assert!(input.next_frame().unwrap().is_some());
        let e = input.next_frame().unwrap_err();
        assert!(e.to_string().starts_with("cut.pcap: frame 3:"), "{e}");

        // Another link type.
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        let w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let e = PcapInput::new(&w.into_writer()[..], "raw.pcap", 1)
            .err()
            .unwrap();
        assert!(matches!(e, PcapIoError::LinkType { .. }), "{e}");
    }

    #[test]
    fn oversize_frames_are_skipped_and_counted() {
        let mut frames = frames();
        frames.insert(1, vec![0u8; 3000]);
        let bytes = input_pcap(&frames, TsResolution::MicroSecond);
        let switch = TableFile::parse(TABLES).unwrap().build().unwrap();
        let mut worker = switch.worker();
        let out = Shared::default();
        let sink = PcapSink::new(out.clone(), "out", TsResolution::MicroSecond).unwrap();
        let input = PcapInput::new(&bytes[..], "in", 1).unwrap();
        let mut backend = PcapBackend::new(input, "in", vec![Box::new(sink)]);
        let mut batch = Batch::new(BatchSize::new(4).unwrap(), 2048);
        let n = crate::io::run(
            &mut worker,
            &mut backend,
            &mut batch,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(n, 3, "the 3000-byte frame never reaches the pipeline");
        let io = backend.counters().read();
        assert_eq!(io.oversize, 1);
        assert_eq!(io.ports[0].rx.packets, 3);
        assert_eq!(switch.totals().received.packets, 3);
        assert_eq!(
            io.egress
                .iter()
                .map(|(p, c)| (*p, c.packets))
                .collect::<Vec<_>>(),
            [(1, 1), (2, 1)]
        );
    }
}
