//! One module per subcommand: argument parsing and wiring, nothing more.

pub mod bench;
pub mod controller;
pub mod ctl;
pub mod demo;
pub mod generate;
pub mod host;
pub mod package_tofino;
pub mod switch;
