//! What a commit did to each VIP: buckets moved against the minimum, daisy
//! chains kept or lost, and each server's share against its ideal.

use super::apportion::Ideal;
use super::model::ServerState;
use std::fmt;
use std::net::Ipv4Addr;

/// One server's share before and after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerShare {
    /// The server.
    pub dip: Ipv4Addr,
    /// Its weight after the commit (before, if it was removed).
    pub weight: u32,
    /// Its state after the commit.
    pub state: ServerState,
    /// Buckets it held before.
    pub before: u32,
    /// Buckets it holds after.
    pub after: u32,
    /// Its ideal share after the commit; `None` unless active.
    pub ideal: Option<Ideal>,
}

impl ServerShare {
    /// Whether `after` is within one bucket of the ideal (always true for
    /// the allocator's output; a server that is not active must hold 0).
    pub fn balanced(&self) -> bool {
        match self.ideal {
            Some(q) => q.admits(self.after),
            None => self.after == 0,
        }
    }
}

/// What one commit did to one VIP.
#[derive(Debug, Clone, PartialEq)]
pub struct VipReport {
    /// The VIP.
    pub vip_id: u16,
    /// Its bucket count.
    pub buckets: u32,
    /// Buckets that went from one server to another.
    pub moved: u64,
    /// The fewest moves that reach the new counts: the sum over servers of
    /// `max(0, before - after)`. The allocator's `moved` always equals it.
    pub minimum: u64,
    /// Buckets given their first server (a new VIP).
    pub assigned: u64,
    /// Moved buckets whose unexpired previous DIP (other than the new
    /// server) was overwritten: connections that can no longer be chained.
    pub chains_broken: u64,
    /// Buckets moved off a removed server that kept that server's own
    /// previous DIP instead of pointing at the dead server.
    pub chains_inherited: u64,
    /// Buckets, not moved, whose previous DIP was a server removed now, so
    /// it was cleared.
    pub chains_cleared: u64,
    /// Every server that held or may hold buckets, by address, removed ones
    /// included.
    pub servers: Vec<ServerShare>,
}

impl VipReport {
    /// Whether every server's share is within one bucket of its ideal.
    pub fn balanced(&self) -> bool {
        self.servers.iter().all(ServerShare::balanced)
    }

    /// The largest distance of a server's count from its ideal, in buckets.
    pub fn max_deviation(&self) -> f64 {
        self.servers
            .iter()
            .filter_map(|s| s.ideal.map(|q| (f64::from(s.after) - q.as_f64()).abs()))
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for VipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "VIP {}: {} buckets, moved {} (minimum {}), assigned {}, chains broken {}, inherited {}, cleared {}",
            self.vip_id,
            self.buckets,
            self.moved,
            self.minimum,
            self.assigned,
            self.chains_broken,
            self.chains_inherited,
            self.chains_cleared
        )?;
        writeln!(
            f,
            "  {:<15} {:<8} {:>6} {:>7} {:>7} {:>10}",
            "server", "state", "weight", "before", "after", "ideal"
        )?;
        for s in &self.servers {
            let ideal = s
                .ideal
                .map_or_else(|| "-".to_string(), |q| format!("{:.2}", q.as_f64()));
            writeln!(
                f,
                "  {:<15} {:<8} {:>6} {:>7} {:>7} {:>10}",
                s.dip.to_string(),
                s.state,
                s.weight,
                s.before,
                s.after,
                ideal
            )?;
        }
        Ok(())
    }
}

/// What one generation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The generation it produced.
    pub generation: u32,
    /// The time it was computed at (Unix seconds).
    pub now: u32,
    /// The change time given to buckets moved by this commit: `now`, or
    /// later when an earlier commit already wrote `now` (change times
    /// strictly increase).
    pub stamp: u32,
    /// Buckets whose daisy chain timed out and was cleared.
    pub expired: u64,
    /// One report per VIP the commit's changes touched, by VIP ID.
    pub vips: Vec<VipReport>,
}

impl Report {
    /// Buckets moved, over all VIPs.
    pub fn moved(&self) -> u64 {
        self.vips.iter().map(|v| v.moved).sum()
    }

    /// The minimum moves, over all VIPs.
    pub fn minimum(&self) -> u64 {
        self.vips.iter().map(|v| v.minimum).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generation {} at {}: moved {} (minimum {}), expired chains {}",
            self.generation,
            self.now,
            self.moved(),
            self.minimum(),
            self.expired
        )?;
        for v in &self.vips {
            write!(f, "{v}")?;
        }
        Ok(())
    }
}
