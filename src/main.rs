//! The `logship` binary: parses the command line, runs the command, prints an error
//! once (with its causes, `{:#}`) and maps it to the exit code.

use std::process::ExitCode;

use clap::Parser as _;

mod app;
mod cli;
mod commands;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logship: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates under contention its own malloc arena (up to
/// 8 per core), each keeping up to 64 MiB reserved and its freed pages resident; the agent's
/// tailer, sink, runtime and driver threads made several of them, a large part of the RSS
/// outside the queue (docs/path-speed.md). Two arenas are enough for a few threads that
/// allocate small records; this must run before any other thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
