//! Sizes of the pipeline, the targets that hold it, and their limits.

use crate::schema::{self, TableSize};
use std::fmt;

/// A P4 architecture the generator writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `v1model`, run by bmv2's `simple_switch_grpc` (and by the software
    /// switch).
    V1model,
    /// Tofino Native Architecture, compiled by bf-p4c.
    Tna,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 2] = [Target::V1model, Target::Tna];

    /// Name used on the command line and in file names.
    pub const fn name(self) -> &'static str {
        match self {
            Target::V1model => "v1model",
            Target::Tna => "tna",
        }
    }

    /// The full P4Info name of an ingress object called `short` in the P4
    /// source. p4c names it after the ingress control; bf-p4c also puts the
    /// pipe's name in front.
    pub fn p4info_name(self, short: &str) -> String {
        match self {
            Target::V1model => format!("{}.{short}", schema::INGRESS_CONTROL),
            Target::Tna => format!("{}.{}.{short}", schema::TNA_PIPE, schema::INGRESS_CONTROL),
        }
    }

    /// The largest number of entries each table may have on this target.
    pub const fn limits(self) -> Limits {
        match self {
            // bmv2 keeps tables in host memory; 2^24 entries per table keeps
            // a default build far from trouble.
            Target::V1model => Limits {
                vip_entries: 1 << 24,
                bucket_entries: 1 << 24,
                routes: 1 << 24,
            },
            // Tofino: 2 x 65,536 buckets with direct counters take about a
            // third of SRAM, so four times 65,536 is the most one pipe holds
            // beside the other tables. Routes sit in TCAM.
            Target::Tna => Limits {
                vip_entries: 1 << 15,
                bucket_entries: 1 << 18,
                routes: 1 << 14,
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1model" => Ok(Target::V1model),
            "tna" => Ok(Target::Tna),
            _ => Err(format!("unknown target {s:?}: expected v1model or tna")),
        }
    }
}

/// Per-target table size limits, in entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// VIP table.
    pub vip_entries: u64,
    /// Bucket table (all VIPs together).
    pub bucket_entries: u64,
    /// Route table.
    pub routes: u64,
}

/// Smallest bucket count per VIP.
pub const MIN_BUCKETS: u32 = 2;
/// Largest bucket count per VIP (the bucket key is at most 20 bits wide).
pub const MAX_BUCKETS: u32 = 1 << 20;
/// Largest number of VIPs with buckets: `vip_id` is a 16-bit key.
pub const MAX_VIPS: u32 = 1 << schema::VIP_ID_BITS;

/// The sizes the generator is given. Everything else about the pipeline is
/// fixed by [`crate::schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipelineParams {
    /// Buckets per VIP, 2^k.
    pub buckets: u32,
    /// VIPs that can have buckets (distinct `vip_id` values).
    pub max_vips: u32,
    /// Entries of the VIP table: service ports plus per-server ports.
    pub max_vip_entries: u32,
    /// Entries of the route table.
    pub routes: u32,
}

impl Default for PipelineParams {
    fn default() -> Self {
        PipelineParams {
            buckets: 1 << 16,
            max_vips: 2,
            max_vip_entries: 1024,
            routes: 1024,
        }
    }
}

/// A generator parameter that no target (or not this target) can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The bucket count is not a power of two.
    #[error("--buckets {value} is not a power of two (valid: a power of two from {min} to {max})")]
    NotPowerOfTwo {
        /// The value given.
        value: u64,
        /// Smallest valid value.
        min: u64,
        /// Largest valid value.
        max: u64,
    },
    /// A parameter is outside its valid range.
    #[error("--{param} {value} is out of range (valid: {min} to {max})")]
    OutOfRange {
        /// The parameter's command-line name.
        param: &'static str,
        /// The value given.
        value: u64,
        /// Smallest valid value.
        min: u64,
        /// Largest valid value.
        max: u64,
    },
    /// A table would be larger than the target can hold.
    #[error(
        "table {table} would have {entries} entries, more than {target} holds ({limit}); \
         lower {params}"
    )]
    TableTooLarge {
        /// The table's name.
        table: &'static str,
        /// Entries it would have.
        entries: u64,
        /// The most the target holds.
        limit: u64,
        /// The target.
        target: Target,
        /// The parameters that set the table's size.
        params: &'static str,
    },
}

impl PipelineParams {
    /// k, the number of bucket bits: `buckets` = 2^k. Meaningful once
    /// [`PipelineParams::validate`] has passed.
    pub fn bucket_bits(&self) -> u8 {
        self.buckets.trailing_zeros() as u8
    }

    /// Entries of the bucket table: `max_vips` x `buckets`.
    pub fn bucket_entries(&self) -> u64 {
        u64::from(self.max_vips) * u64::from(self.buckets)
    }

    /// Checks the parameters against the fixed ranges and `target`'s limits.
    pub fn validate(&self, target: Target) -> Result<(), ParamError> {
        if !self.buckets.is_power_of_two() || !(MIN_BUCKETS..=MAX_BUCKETS).contains(&self.buckets) {
            return Err(ParamError::NotPowerOfTwo {
                value: self.buckets.into(),
                min: MIN_BUCKETS.into(),
                max: MAX_BUCKETS.into(),
            });
        }
        let limits = target.limits();
        let ranged = [
            ("max-vips", self.max_vips, u64::from(MAX_VIPS)),
            ("max-vip-entries", self.max_vip_entries, limits.vip_entries),
            ("routes", self.routes, limits.routes),
        ];
        for (param, value, max) in ranged {
            if value == 0 || u64::from(value) > max {
                return Err(ParamError::OutOfRange {
                    param,
                    value: value.into(),
                    min: 1,
                    max,
                });
            }
        }
        if self.bucket_entries() > limits.bucket_entries {
            return Err(ParamError::TableTooLarge {
                table: schema::BUCKETS.name,
                entries: self.bucket_entries(),
                limit: limits.bucket_entries,
                target,
                params: "--buckets or --max-vips",
            });
        }
        Ok(())
    }

    /// The number of entries a table of this pipeline holds.
    pub fn table_size(&self, size: TableSize) -> u64 {
        match size {
            TableSize::VipEntries => self.max_vip_entries.into(),
            TableSize::BucketEntries => self.bucket_entries(),
            TableSize::Routes => self.routes.into(),
            TableSize::One => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_every_target() {
        let p = PipelineParams::default();
        for t in Target::ALL {
            p.validate(t).unwrap();
        }
        assert_eq!(p.bucket_bits(), 16);
        assert_eq!(p.bucket_entries(), 131_072);
    }

    #[test]
    fn bucket_count_must_be_power_of_two_in_range() {
        for buckets in [0, 1, 3, 1000, 1 << 21] {
            let p = PipelineParams {
                buckets,
                ..Default::default()
            };
            let err = p.validate(Target::V1model).unwrap_err();
            assert!(matches!(err, ParamError::NotPowerOfTwo { .. }), "{err}");
            assert!(err.to_string().contains("--buckets"));
        }
    }

    #[test]
    fn zero_sizes_name_the_parameter() {
        let p = PipelineParams {
            routes: 0,
            ..Default::default()
        };
        let err = p.validate(Target::Tna).unwrap_err().to_string();
        assert!(
            err.contains("--routes 0") && err.contains("valid: 1 to"),
            "{err}"
        );
        let p = PipelineParams {
            max_vips: 0,
            ..Default::default()
        };
        assert!(
            p.validate(Target::V1model)
                .unwrap_err()
                .to_string()
                .contains("--max-vips")
        );
    }

    #[test]
    fn tna_rejects_tables_bmv2_accepts() {
        let p = PipelineParams {
            max_vips: 8,
            ..Default::default()
        };
        p.validate(Target::V1model).unwrap();
        let err = p.validate(Target::Tna).unwrap_err();
        assert!(
            matches!(
                err,
                ParamError::TableTooLarge {
                    entries: 524_288,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn target_names_round_trip() {
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>().unwrap(), t);
        }
        assert!("psa".parse::<Target>().is_err());
        assert_eq!(Target::Tna.p4info_name("vip"), "pipe.BeamerIngress.vip");
    }
}
