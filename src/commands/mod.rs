//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

mod parse;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Parse(args) => parse::run(args),
    }
}
