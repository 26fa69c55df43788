//! Health checks: a sans-IO state machine fed with probe results and the
//! time, and a thin tokio adapter that makes TCP connections.
//!
//! A server starts healthy. After `fall` failed probes in a row it is
//! down (the controller drains it); after `rise` successful probes in a
//! row, and not before its hold-down has passed, it is up again (the
//! controller activates it).
//!
//! Flapping is damped by the hold-down: a server that goes down within
//! `hold_down_max` of coming back is flapping, and its hold-down doubles
//! (up to `hold_down_max`) each time; a server that stays up for
//! `hold_down_max` is forgiven, and its next hold-down is `hold_down` again.
//! So a server that bounces every few seconds moves its buckets back and
//! forth at most once per (growing) hold-down, never at probe rate.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of one server's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// TCP port probed on the server's address.
    pub port: u16,
    /// Time between probes.
    pub interval: Duration,
    /// How long a connection attempt may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive failures that take a server down.
    pub fall: u32,
    /// Consecutive successes that bring it back.
    pub rise: u32,
    /// The least time a server stays down, doubled for each flap.
    pub hold_down: Duration,
    /// The longest hold-down; also how long a server must stay up to be
    /// forgiven its flaps.
    pub hold_down_max: Duration,
}

impl HealthConfig {
    /// Defaults for probing `port`: every 2 s, 1 s timeout, down after 3
    /// failures, up after 2 successes, hold-down 10 s growing to 5 min.
    pub fn new(port: u16) -> Self {
        HealthConfig {
            port,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            fall: 3,
            rise: 2,
            hold_down: Duration::from_secs(10),
            hold_down_max: Duration::from_secs(300),
        }
    }
}

/// What the checks say about a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Reachable (or not yet known to be unreachable).
    Up,
    /// Failed `fall` probes in a row; not yet back.
    Down,
}

impl Health {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A change of [`Health`] that the controller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The server went down: drain it.
    WentDown,
    /// The server came back: activate it.
    CameUp,
}

/// One server's health state machine. Time is whatever monotonic clock
/// the caller uses, as a [`Duration`] since some fixed origin.
#[derive(Debug, Clone)]
pub struct HealthMachine {
    cfg: HealthConfig,
    state: Health,
    ok_run: u32,
    fail_run: u32,
    /// The hold-down the next (or current) down period gets.
    hold_down: Duration,
    /// While down: the earliest time the server may come back.
    hold_until: Duration,
    /// While up: when it came back (`None` if it was never down).
    up_since: Option<Duration>,
    flaps: u32,
}

impl HealthMachine {
    /// A machine for a server assumed healthy.
    pub fn new(cfg: HealthConfig) -> Self {
        HealthMachine {
            cfg,
            state: Health::Up,
            ok_run: 0,
            fail_run: 0,
            hold_down: cfg.hold_down,
            hold_until: Duration::ZERO,
            up_since: None,
            flaps: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    /// The current verdict.
    pub fn state(&self) -> Health {
        self.state
    }

    /// While down: the earliest time the server may come back.
    pub fn hold_until(&self) -> Option<Duration> {
        (self.state == Health::Down).then_some(self.hold_until)
    }

    /// The hold-down the current or next down period gets.
    pub fn hold_down(&self) -> Duration {
        self.hold_down
    }

    /// Down periods that started soon after a return (flaps), since the
    /// server was last stable.
    pub fn flaps(&self) -> u32 {
        self.flaps
    }

    /// Feeds one probe result at time `now`; returns the transition it
    /// causes, if any.
    pub fn observe(&mut self, now: Duration, ok: bool) -> Option<Transition> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        match self.state {
            Health::Up => {
                if let Some(since) = self.up_since
                    && now.saturating_sub(since) >= self.cfg.hold_down_max
                {
                    // Stable long enough: forgiven.
                    self.hold_down = self.cfg.hold_down;
                    self.flaps = 0;
                    self.up_since = None;
                }
                if self.fail_run >= self.cfg.fall.max(1) {
                    if self.up_since.is_some() {
                        // Down again soon after coming back: a flap.
                        self.flaps += 1;
                        self.hold_down = (self.hold_down * 2).min(self.cfg.hold_down_max);
                    }
                    self.state = Health::Down;
                    self.hold_until = now + self.hold_down;
                    self.up_since = None;
                    return Some(Transition::WentDown);
                }
                None
            }
            Health::Down => {
                if self.ok_run >= self.cfg.rise.max(1) && now >= self.hold_until {
                    self.state = Health::Up;
                    self.up_since = Some(now);
                    return Some(Transition::CameUp);
                }
                None
            }
        }
    }
}

/// One probe: can a TCP connection to `addr` be opened within `timeout`?
pub async fn probe_tcp(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The tokio side: probes `addr` every interval and calls `on_transition`
/// with each transition, forever (abort the task to stop it).
pub async fn run_checks(
    addr: SocketAddr,
    cfg: HealthConfig,
    mut on_transition: impl FnMut(Transition, &HealthMachine),
) {
    let mut machine = HealthMachine::new(cfg);
    let origin = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = probe_tcp(addr, cfg.timeout).await;
        let now = origin.elapsed();
        if let Some(t) = machine.observe(now, ok) {
            on_transition(t, &machine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig {
            port: 80,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fall: 3,
            rise: 2,
            hold_down: Duration::from_secs(10),
            hold_down_max: Duration::from_secs(80),
        }
    }

    /// Feeds one probe per second starting at `t`, from a string of
    /// results ('+' ok, '-' failed), and returns each transition with its
    /// second.
    fn run(m: &mut HealthMachine, t: &mut u64, probes: &str) -> Vec<(u64, Transition)> {
        let mut out = Vec::new();
        for c in probes.chars() {
            let ok = match c {
                '+' => true,
                '-' => false,
                _ => continue,
            };
            if let Some(tr) = m.observe(Duration::from_secs(*t), ok) {
                out.push((*t, tr));
            }
            *t += 1;
        }
        out
    }

    use Transition::{CameUp, WentDown};

    #[test]
    fn table() {
        struct Case {
            what: &'static str,
            probes: &'static str,
            expect: &'static [(u64, Transition)],
        }
        let cases = [
            Case {
                what: "healthy stays up",
                probes: "++++++++++",
                expect: &[],
            },
            Case {
                what: "fewer than `fall` failures in a row do nothing",
                probes: "++--+--+--+",
                expect: &[],
            },
            Case {
                what: "`fall` failures take it down at the third",
                probes: "++---",
                expect: &[(4, WentDown)],
            },
            Case {
                what: "back after `rise` successes, but not before the 10 s hold-down",
                // down at t=2 (hold until 12); successes from t=3 on.
                probes: "--- ++++++++++ ++",
                expect: &[(2, WentDown), (12, CameUp)],
            },
            Case {
                what: "hold-down passed: `rise` successes in a row needed",
                // down at 2; failures to 14; then + - + + : up at 18.
                probes: "--- ------------ +-++",
                expect: &[(2, WentDown), (18, CameUp)],
            },
        ];
        for c in cases {
            let mut m = HealthMachine::new(cfg());
            let mut t = 0;
            assert_eq!(run(&mut m, &mut t, c.probes), c.expect, "{}", c.what);
        }
    }

    #[test]
    fn flapping_doubles_the_hold_down_up_to_the_max_then_is_forgiven() {
        let mut m = HealthMachine::new(cfg());
        let mut t = 0;
        // Down at 2, hold-down 10 s: up at 12.
        let mut seen = run(&mut m, &mut t, "---++++++++++");
        assert_eq!(seen, [(2, WentDown), (12, CameUp)]);
        // Fails again right away: a flap, hold-down 20 s.
        seen = run(&mut m, &mut t, "---");
        assert_eq!(seen, [(15, WentDown)]);
        assert_eq!((m.hold_down(), m.flaps()), (Duration::from_secs(20), 1));
        assert_eq!(m.hold_until(), Some(Duration::from_secs(35)));
        seen = run(&mut m, &mut t, &"+".repeat(25));
        assert_eq!(seen, [(35, CameUp)]);
        // Flaps again: 40 s, then 80 s (the max), then still 80 s.
        for expect in [40, 80, 80] {
            let before = t;
            let seen = run(&mut m, &mut t, "---");
            assert_eq!(seen, [(before + 2, WentDown)]);
            assert_eq!(m.hold_down(), Duration::from_secs(expect));
            let down_at = before + 2;
            let seen = run(&mut m, &mut t, &"+".repeat(expect as usize + 1));
            assert_eq!(seen, [(down_at + expect, CameUp)]);
        }
        // Stable for hold_down_max (80 s): forgiven, back to 10 s.
        run(&mut m, &mut t, &"+".repeat(81));
        let before = t;
        run(&mut m, &mut t, "---");
        assert_eq!(m.hold_down(), Duration::from_secs(10));
        assert_eq!(m.flaps(), 0);
        assert_eq!(m.hold_until(), Some(Duration::from_secs(before + 2 + 10)));
    }

    #[test]
    fn bouncing_every_probe_never_moves_faster_than_the_hold_down() {
        let mut m = HealthMachine::new(cfg());
        let mut t = 0;
        let pattern = "---++".repeat(200); // 1000 s of a server bouncing
        let seen = run(&mut m, &mut t, &pattern);
        // Each down period lasts at least the (growing) hold-down, so far
        // fewer transitions than the 400 a naive checker would make.
        // 10 + 20 + 40 + 80 + 80 + ... s down: about 2 x 13 transitions.
        assert!(seen.len() <= 30, "{}", seen.len());
        for w in seen.windows(2) {
            if let [(a, WentDown), (b, CameUp)] = w {
                assert!(b - a >= 10);
            }
        }
        assert!(m.hold_down() >= Duration::from_secs(40));
    }

    #[tokio::test]
    async fn tcp_probe_of_a_listening_and_a_closed_port() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap();
        assert!(probe_tcp(open, Duration::from_secs(1)).await);
        drop(l);
        assert!(!probe_tcp(open, Duration::from_secs(1)).await);
    }
}
