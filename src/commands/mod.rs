//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

mod check_config;
mod parse;
mod query;
mod schema;
mod serve;

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => crate::app::run(&args.config),
        Command::CheckConfig(args) => check_config::run(&args.config),
        Command::Parse(args) => parse::run(args),
        Command::Schema { action } => schema::run(action),
        Command::Serve(args) => serve::run(args),
        Command::Query(args) => query::run(args),
    }
}
