//! Not built yet: this subcommand's issue is open.

/// Arguments (none yet).
#[derive(clap::Args)]
pub struct Args {}

/// Fails: the subcommand is not built yet.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("this subcommand is not built yet")
}
