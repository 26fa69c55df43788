//! SIGINT/SIGTERM stop the agent; SIGUSR1 asks it for its counters.

use super::cvt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static REPORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_report(_: libc::c_int) {
    REPORT.store(true, Ordering::Relaxed);
}

fn handle(sig: libc::c_int, f: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: sigaction is plain data; the handlers only store to atomics,
    // which is async-signal-safe. No SA_RESTART: a blocked receive returns.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = f as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        cvt(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// Installs the handlers; returns the (stop, report) flags they set.
pub fn install() -> io::Result<(&'static AtomicBool, &'static AtomicBool)> {
    handle(libc::SIGINT, on_stop)?;
    handle(libc::SIGTERM, on_stop)?;
    handle(libc::SIGUSR1, on_report)?;
    Ok((&STOP, &REPORT))
}
