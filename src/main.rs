use std::process::ExitCode;

use clap::Parser as _;

// Every record costs a dozen small allocations (its fields); mimalloc makes them about
// a third cheaper than glibc's malloc (parsers/benches/throughput).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
