//! `beamer`: one command for every part of the load balancer.
//!
//! Each subcommand lives in its own module under `cli/` and is a thin
//! front for a library crate of the workspace.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A Beamer-style stateless load balancer for programmable switches.
#[derive(Parser)]
#[command(name = "beamer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the P4 program and its P4Info for a target.
    Gen(cli::generate::Args),
    /// Run the software switch (pcap files or live ports, P4Runtime server).
    Switch(cli::switch::Args),
    /// Run the controller: own the bucket mapping, keep switches in sync.
    Controller(cli::controller::Args),
    /// Talk to a running controller (servers, status).
    Ctl(cli::ctl::Args),
    /// Run the server-side agent: decapsulate and daisy-chain.
    Host(cli::host::Args),
    /// Benchmark the software switch and print a table.
    Bench(cli::bench::Args),
    /// Controller, switch and simulated servers in one process, under churn.
    Demo(cli::demo::Args),
    /// Pack a bf-p4c output directory into a Stratum device config.
    PackageTofino(cli::package_tofino::Args),
}

/// Runs the subcommand. An error is printed as its chain of causes, one
/// line, with no backtrace (operators read these), and exits with status 1.
fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Gen(a) => cli::generate::run(a),
        Command::Switch(a) => cli::switch::run(a),
        Command::Controller(a) => cli::controller::run(a),
        Command::Ctl(a) => cli::ctl::run(a),
        Command::Host(a) => cli::host::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Demo(a) => cli::demo::run(a),
        Command::PackageTofino(a) => cli::package_tofino::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
