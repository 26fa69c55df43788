//! Test support: the frame builder, hex helpers and fixture tables of
//! `beamer-fixtures` (one definition for every target), and the fixture
//! switch the golden tests run against.

#![allow(dead_code)]

pub use beamer_fixtures::*;

use beamer_pipeline::PipelineParams;
use beamer_softswitch::Switch;

/// A switch with the default sizes and the fixture's entries.
pub fn fixture_switch() -> Switch {
    let s = Switch::new(PipelineParams::default()).unwrap();
    s.apply_all(&fixture_updates()).unwrap();
    s
}
