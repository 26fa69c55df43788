//! One module per subcommand: argument parsing and wiring, nothing more.

pub mod bench;
pub mod controller;
pub mod ctl;
pub mod demo;
pub mod generate;
pub mod host;
pub mod package_tofino;
pub mod switch;

/// Parses `argv` (the words after the subcommand) into one subcommand's
/// `Args`, as `beamer <subcommand>` would: for the modules' tests.
#[cfg(test)]
fn parse_args<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }

    Cli::<A>::try_parse_from(std::iter::once("beamer").chain(argv.iter().copied())).map(|c| c.args)
}
