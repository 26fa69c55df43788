//! The one definition of the Beamer mux pipeline.
//!
//! Everything a target must agree on lives here and only here:
//! - [`wire`]: header and option layouts, as zero-copy views;
//! - [`hash`]: the bucket hash and its inputs;
//! - [`daisy`]: the daisy-chain timeout servers and controller share;
//! - [`drop`](mod@drop): drop reasons, their precedence and counter indices;
//! - [`entries`]: typed table entries and updates;
//! - [`schema`]: tables, actions, parameters, counters and their P4Runtime IDs;
//! - [`params`]: the generator's size parameters, targets and their limits;
//! - `p4rt` (feature `p4runtime`): entries to and from P4Runtime messages,
//!   and the check of a P4Info against this pipeline.
//!
//! The P4 generator, the software switch and the controller all read it.

pub mod daisy;
pub mod drop;
pub mod entries;
pub mod hash;
#[cfg(feature = "p4runtime")]
pub mod p4rt;
pub mod params;
pub mod schema;
pub mod wire;

pub use drop::DropReason;
pub use params::{ParamError, PipelineParams, Target};
