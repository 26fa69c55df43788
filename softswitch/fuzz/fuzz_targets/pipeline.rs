//! Fuzzes the parser and the whole pipeline.
//!
//! The input is a batch size byte, then frames, each a length byte and
//! that many bytes (the last frame takes what is left). The tables are the
//! committed example table file, loaded once; the switch and its two
//! workers live across runs, so the counter checks use differences. Each
//! batch runs through the batch path and
//! each frame through the single-frame path; the target checks that both
//! agree, that every packet has exactly one verdict, that forwarded frames
//! carry a valid IPv4 header checksum, and that the counters add up.

#![no_main]

use beamer_pipeline::DropReason;
use beamer_pipeline::wire::internet_checksum;
use beamer_softswitch::tablefile::TableFile;
use beamer_softswitch::{Batch, BatchSize, Frame, HEADROOM, Switch, Verdict, Worker};
use libfuzzer_sys::fuzz_target;
use std::sync::{LazyLock, Mutex};

struct State {
    switch: Switch,
    batched: Worker,
    single: Worker,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    let file = TableFile::parse(include_str!("../../examples/tables.toml")).expect("example");
    let switch = file.build().expect("example tables fit");
    Mutex::new(State {
        batched: switch.worker(),
        single: switch.worker(),
        switch,
    })
});

fn frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        out.push(frame);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let size = BatchSize::new(usize::from(size) + 1).expect("1..=256");
    let frames = frames(rest);
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let State {
        switch,
        batched: worker,
        single,
    } = &mut *state;
    let drops_before = switch.drop_counters();
    let totals_before = switch.totals();
    let mut batch = Batch::new(size, 256);
    let mut forwarded = 0u64;
    let mut dropped = [0u64; DropReason::COUNT];
    for chunk in frames.chunks(size.get()) {
        batch.clear();
        for f in chunk {
            batch.push(f, 0).expect("frames are at most 255 bytes");
        }
        worker.process_batch(&mut batch);
        for (f, p) in chunk.iter().zip(batch.iter()) {
            let v = p.verdict.expect("a verdict for every packet");
            match v {
                Verdict::Forward { .. } => {
                    forwarded += 1;
                    let ihl = usize::from(p.frame[14] & 0x0f) * 4;
                    assert_eq!(internet_checksum(&p.frame[14..14 + ihl]), 0);
                }
                Verdict::Drop(r) => {
                    dropped[r.index()] += 1;
                    assert_eq!(p.frame, *f, "a dropped frame is unchanged");
                }
            }
            let mut buf = vec![0u8; HEADROOM + f.len()];
            buf[HEADROOM..].copy_from_slice(f);
            let mut frame = Frame::new(&mut buf, HEADROOM, f.len()).expect("room");
            assert_eq!(single.begin().process(&mut frame, 0), v);
            assert_eq!(frame.bytes(), p.frame);
        }
    }
    // Two passes over every frame: the counters saw each twice.
    let drops = switch.drop_counters();
    for r in DropReason::ALL {
        let delta = drops[r.index()].wrapping_sub(drops_before[r.index()]);
        assert_eq!(delta.packets, 2 * dropped[r.index()]);
    }
    let totals = switch.totals();
    let received = totals.received.wrapping_sub(totals_before.received);
    let sent = totals.forwarded.wrapping_sub(totals_before.forwarded);
    assert_eq!(received.packets, 2 * frames.len() as u64);
    assert_eq!(sent.packets, 2 * forwarded);
});
