//! Exponential backoff with jitter, sans-IO: the caller sleeps.

use std::time::Duration;

/// Retry delays that double from `initial` up to `max`, each spread by up
/// to ±`jitter_percent` so that many controllers (or many switches of one
/// controller) do not retry in lockstep. Deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter_percent: u32,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`, with ±20 %
    /// jitter drawn from `seed`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
            jitter_percent: 20,
            attempt: 0,
            // xorshift must not start at 0.
            rng: seed | 1,
        }
    }

    /// The same without jitter (for tests and exact figures).
    pub fn without_jitter(mut self) -> Self {
        self.jitter_percent = 0;
        self
    }

    /// Failures since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next retry; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempt.min(32);
        self.attempt = self.attempt.saturating_add(1);
        let base = self
            .initial
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        if self.jitter_percent == 0 {
            return base;
        }
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = u64::from(self.jitter_percent) * 2 + 1;
        let pct = (self.rng % span) as i64 - i64::from(self.jitter_percent);
        let ms = base.as_millis() as i64;
        let jittered = ms + ms * pct / 100;
        Duration::from_millis(jittered.max(1) as u64).min(self.max)
    }

    /// Success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(MS(100), MS(1500), 7).without_jitter();
        let delays: Vec<_> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            [
                MS(100),
                MS(200),
                MS(400),
                MS(800),
                MS(1500),
                MS(1500),
                MS(1500)
            ]
        );
        assert_eq!(b.attempts(), 7);
        b.reset();
        assert_eq!(b.next_delay(), MS(100));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(MS(100), Duration::from_secs(10), 1);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(10));
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_differs_between_seeds() {
        let mut a = Backoff::new(MS(1000), MS(1000), 1);
        let mut b = Backoff::new(MS(1000), MS(1000), 2);
        let da: Vec<_> = (0..20).map(|_| a.next_delay()).collect();
        let db: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        for d in da.iter().chain(&db) {
            assert!(*d >= MS(800) && *d <= MS(1000), "{d:?}");
        }
        assert_ne!(da, db);
        // Same seed, same sequence.
        let mut c = Backoff::new(MS(1000), MS(1000), 1);
        assert_eq!((0..20).map(|_| c.next_delay()).collect::<Vec<_>>(), da);
    }
}
