//! Apportionment: how many of a VIP's buckets each active server gets.
//!
//! Each server's ideal share is `q = N * w / W` buckets (N buckets, weight
//! w, total weight W). A target is *balanced* when every server gets
//! `floor(q)` or `ceil(q)`, so it is less than one bucket from its ideal.
//! Many balanced targets exist when shares are fractional; this module picks
//! the one closest to the current counts, so that a change moves as few
//! buckets as any balanced outcome allows.
//!
//! The method is largest remainder (Hamilton) made sticky:
//! 1. start every server at its current count clamped to `[floor, ceil]`;
//! 2. if that hands out too few buckets, raise servers from floor to ceil:
//!    first those already gaining, then those the commit changed (added,
//!    activated, re-weighted), then by largest remainder, then by input
//!    order;
//! 3. if it hands out too many, lower servers from ceil to floor: first those
//!    already losing, then those the commit changed, then by smallest
//!    remainder, then by reverse input order.
//!
//! Letting the changed servers absorb the rounding keeps the others still:
//! an added server takes the extra bucket rather than an old server that
//! would then need a bucket from another old one.
//!
//! Step 1 is the unconstrained best; every raise in step 2 costs no movement
//! and every lowering in step 3 costs exactly one bucket, so the result
//! moves the fewest buckets of any balanced target (the moves counted as
//! `sum max(0, current - target)`). Plain Hamilton, by contrast, can make an
//! existing server gain when another is added (the new-states paradox) and
//! so move buckets between servers that did not change.
//!
//! Remainders are compared exactly: they share the denominator W.

/// One active server's input to the apportionment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The server's weight, above 0.
    pub weight: u32,
    /// Buckets it holds now.
    pub current: u32,
    /// The commit changed this server (added, activated or re-weighted it),
    /// so it absorbs rounding before the others.
    pub changed: bool,
}

/// A server's ideal share `num / den` buckets, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ideal {
    /// Numerator: buckets times the server's weight.
    pub num: u64,
    /// Denominator: the total weight of the active servers.
    pub den: u64,
}

impl Ideal {
    /// The ideal share of a server of `weight` among `total_weight`, out of
    /// `buckets`.
    pub fn new(buckets: u32, weight: u32, total_weight: u64) -> Self {
        Ideal {
            num: u64::from(buckets) * u64::from(weight),
            den: total_weight,
        }
    }

    /// The largest whole number of buckets at or below the ideal.
    pub fn floor(&self) -> u32 {
        (self.num / self.den) as u32
    }

    /// The smallest whole number of buckets at or above the ideal.
    pub fn ceil(&self) -> u32 {
        self.num.div_ceil(self.den) as u32
    }

    /// The fractional part's numerator (over `den`).
    pub fn remainder(&self) -> u64 {
        self.num % self.den
    }

    /// Whether `count` buckets is a balanced share: floor or ceil.
    pub fn admits(&self, count: u32) -> bool {
        (self.floor()..=self.ceil()).contains(&count)
    }

    /// The ideal as a float, for display.
    pub fn as_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// Balanced targets for `claims` sharing `buckets`, closest to the current
/// counts; ties go to earlier claims. Returns one target per claim, summing
/// to `buckets`. Empty input gives empty output; weights must be above 0.
pub fn targets(buckets: u32, claims: &[Claim]) -> Vec<u32> {
    if claims.is_empty() {
        return Vec::new();
    }
    let total: u64 = claims.iter().map(|c| u64::from(c.weight)).sum();
    let ideals: Vec<Ideal> = claims
        .iter()
        .map(|c| Ideal::new(buckets, c.weight, total))
        .collect();
    let mut t: Vec<u32> = claims
        .iter()
        .zip(&ideals)
        .map(|(c, q)| c.current.clamp(q.floor(), q.ceil()))
        .collect();
    let sum: u64 = t.iter().map(|&x| u64::from(x)).sum();
    let n = u64::from(buckets);
    if sum < n {
        let mut up: Vec<usize> = (0..t.len()).filter(|&i| t[i] < ideals[i].ceil()).collect();
        // Already gaining first, then largest remainder, then input order.
        up.sort_by_key(|&i| {
            (
                claims[i].current >= t[i],
                !claims[i].changed,
                std::cmp::Reverse(ideals[i].remainder()),
                i,
            )
        });
        for &i in up.iter().take((n - sum) as usize) {
            t[i] += 1;
        }
    } else if sum > n {
        let mut down: Vec<usize> = (0..t.len()).filter(|&i| t[i] > ideals[i].floor()).collect();
        // Already losing first, then smallest remainder, then reverse order.
        down.sort_by_key(|&i| {
            (
                claims[i].current <= t[i],
                !claims[i].changed,
                ideals[i].remainder(),
                std::cmp::Reverse(i),
            )
        });
        for &i in down.iter().take((sum - n) as usize) {
            t[i] -= 1;
        }
    }
    t
}

/// Buckets that must move to go from `current` to `target` counts: what the
/// losers give up, `sum max(0, current - target)`.
pub fn movement(current: &[u32], target: &[u32]) -> u64 {
    current
        .iter()
        .zip(target)
        .map(|(&c, &t)| u64::from(c.saturating_sub(t)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: &[(u32, u32)]) -> Vec<Claim> {
        v.iter()
            .map(|&(weight, current)| Claim {
                weight,
                current,
                changed: false,
            })
            .collect()
    }

    /// Every balanced target, by brute force (2^n combinations).
    fn all_balanced(buckets: u32, c: &[Claim]) -> Vec<Vec<u32>> {
        let total: u64 = c.iter().map(|x| u64::from(x.weight)).sum();
        let q: Vec<Ideal> = c
            .iter()
            .map(|x| Ideal::new(buckets, x.weight, total))
            .collect();
        let mut out = Vec::new();
        for mask in 0u32..(1 << c.len()) {
            let t: Vec<u32> = q
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    if mask >> i & 1 == 1 {
                        q.ceil()
                    } else {
                        q.floor()
                    }
                })
                .collect();
            if t.iter().map(|&x| u64::from(x)).sum::<u64>() == u64::from(buckets)
                && !out.contains(&t)
            {
                out.push(t);
            }
        }
        out
    }

    #[test]
    fn table() {
        // (description, buckets, (weight, current) per server, expected)
        type Case<'a> = (&'a str, u32, &'a [(u32, u32)], &'a [u32]);
        let cases: &[Case] = &[
            ("first server takes all", 8, &[(1, 0)], &[8]),
            ("even split", 8, &[(1, 0), (1, 0)], &[4, 4]),
            (
                "fresh split: extra bucket to the first",
                8,
                &[(1, 0); 3],
                &[3, 3, 2],
            ),
            ("weights 3:1", 16, &[(3, 0), (1, 0)], &[12, 4]),
            (
                "fresh: largest remainder wins",
                10,
                &[(1, 0), (2, 0)],
                &[3, 7],
            ),
            (
                "sticky: whoever holds the extra keeps it",
                8,
                &[(1, 2), (1, 3), (1, 3)],
                &[2, 3, 3],
            ),
            (
                "new server gains, old ones only lose",
                8,
                &[(1, 3), (1, 3), (1, 2), (1, 0)],
                &[2, 2, 2, 2],
            ),
            (
                "removed server's share spreads, nobody loses",
                8,
                &[(1, 3), (1, 2)],
                &[4, 4],
            ),
            (
                "sticky keeps a tiny server at zero rather than move",
                10,
                &[(19, 4), (19, 3), (19, 3), (3, 0)],
                &[4, 3, 3, 0],
            ),
            ("all buckets to one of many", 2, &[(1, 0); 4], &[1, 1, 0, 0]),
        ];
        for (desc, n, input, want) in cases {
            let got = targets(*n, &claims(input));
            assert_eq!(&got[..], *want, "{desc}");
        }
    }

    #[test]
    fn changed_servers_absorb_rounding() {
        // 10.0.0.1 (weight 1) sits at 0 of 4 buckets, 10.0.0.2 (weight 4) at
        // 4; a third server of weight 1 joins. The extra bucket goes to the
        // newcomer, not to the old server with the same remainder, so no
        // bucket moves between old servers.
        let mut c = claims(&[(1, 0), (4, 4), (1, 0)]);
        assert_eq!(targets(4, &c), [1, 3, 0]);
        c[2].changed = true;
        assert_eq!(targets(4, &c), [0, 3, 1]);
        // Lowering: the re-weighted server gives up the extra bucket.
        let mut c = claims(&[(1, 2), (1, 2), (1, 0)]);
        assert_eq!(targets(4, &c), [2, 1, 1]);
        c[0].changed = true;
        assert_eq!(targets(4, &c), [1, 2, 1]);
    }

    #[test]
    fn ideal_bounds() {
        let q = Ideal::new(10, 1, 3);
        assert_eq!((q.floor(), q.ceil(), q.remainder()), (3, 4, 1));
        assert!(q.admits(3) && q.admits(4) && !q.admits(5) && !q.admits(2));
        let q = Ideal::new(8, 1, 2);
        assert_eq!((q.floor(), q.ceil()), (4, 4));
        assert!(!q.admits(5));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn inputs() -> impl Strategy<Value = (u32, Vec<Claim>)> {
            (1u32..=5).prop_flat_map(|bits| {
                let n = 1u32 << bits;
                (
                    Just(n),
                    proptest::collection::vec((1u32..=7, 0u32..=n, any::<bool>()), 1..=6).prop_map(
                        move |v| {
                            // Make the current counts sum to at most n.
                            let mut left = n;
                            v.into_iter()
                                .map(|(weight, c, changed)| {
                                    let current = c.min(left);
                                    left -= current;
                                    Claim {
                                        weight,
                                        current,
                                        changed,
                                    }
                                })
                                .collect()
                        },
                    ),
                )
            })
        }

        proptest! {
            #[test]
            fn balanced_and_minimal((n, c) in inputs()) {
                let t = targets(n, &c);
                let total: u64 = c.iter().map(|x| u64::from(x.weight)).sum();
                prop_assert_eq!(t.iter().map(|&x| u64::from(x)).sum::<u64>(), u64::from(n));
                for (x, t) in c.iter().zip(&t) {
                    prop_assert!(Ideal::new(n, x.weight, total).admits(*t));
                }
                let cur: Vec<u32> = c.iter().map(|x| x.current).collect();
                let best = all_balanced(n, &c)
                    .iter()
                    .map(|b| movement(&cur, b))
                    .min()
                    .unwrap();
                prop_assert_eq!(movement(&cur, &t), best);
            }

            #[test]
            fn deterministic((n, c) in inputs()) {
                prop_assert_eq!(targets(n, &c), targets(n, &c));
            }
        }
    }
}
