//! The clock the core is given: wall-clock time, because the option's change
//! time is Unix seconds written by the controller.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in milliseconds since the Unix epoch.
///
/// The core never reads a clock itself: every call is given `now`, so tests
/// drive it with a virtual clock and the agent with [`Time::now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The epoch itself.
    pub const ZERO: Time = Time(0);

    /// `ms` milliseconds after the epoch.
    pub const fn from_unix_millis(ms: u64) -> Self {
        Time(ms)
    }

    /// `s` seconds after the epoch.
    pub const fn from_unix_secs(s: u32) -> Self {
        Time(s as u64 * 1000)
    }

    /// Milliseconds since the epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, as the option's change time counts
    /// them (saturating after 2106).
    pub const fn unix_secs(self) -> u32 {
        let s = self.0 / 1000;
        if s > u32::MAX as u64 {
            u32::MAX
        } else {
            s as u32
        }
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Time(
            self.0
                .saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// The system's wall clock.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Time(d.as_millis().min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis() {
        let t = Time::from_unix_secs(1_700_000_000);
        assert_eq!(t.unix_millis(), 1_700_000_000_000);
        assert_eq!(
            t.plus(Duration::from_millis(999)).unix_secs(),
            1_700_000_000
        );
        assert_eq!(t.plus(Duration::from_secs(1)).unix_secs(), 1_700_000_001);
        assert_eq!(Time::from_unix_millis(u64::MAX).unix_secs(), u32::MAX);
    }
}
