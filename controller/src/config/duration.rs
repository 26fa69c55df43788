//! Durations in the config file: `"250ms"`, `"2s"`, `"5m"`, `"1h"`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A duration written with its unit, so that `timeout = 5` can never be
/// misread as milliseconds or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `<integer><unit>`, unit one of `ms`, `s`, `m`, `h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let bad =
            || format!("invalid duration {s:?}: expected e.g. \"500ms\", \"2s\", \"5m\" or \"1h\"");
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms = match unit.trim() {
            "ms" => Some(n),
            "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => return Err(bad()),
        }
        .ok_or_else(bad)?;
        Ok(Dur(Duration::from_millis(ms)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"2s\" or \"5m\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                Dur::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        for (text, ms) in [
            ("250ms", 250),
            ("2s", 2000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("0s", 0),
        ] {
            assert_eq!(
                Dur::parse(text).unwrap().0,
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in [
            "",
            "5",
            "s",
            "1.5s",
            "-1s",
            "3 weeks",
            "99999999999999999999h",
        ] {
            assert!(Dur::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Dur(Duration::from_secs(240)).to_string(), "240s");
    }
}
