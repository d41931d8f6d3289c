//! The `logship` binary: parses the command line, runs the command, prints an error
//! once (with its causes, `{:#}`) and maps it to the exit code.

use std::process::ExitCode;

use clap::Parser as _;

mod app;
mod cli;
mod commands;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logship: {e:#}");
            ExitCode::FAILURE
        }
    }
}
