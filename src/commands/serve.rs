//! `logship serve`: the read-only HTTP API and the log explorer.

use std::process::ExitCode;

use anyhow::Context as _;
use logship::config::Config;
use logship::query::Reader;
use logship::serve::{ServeConfig, Server, Token};
use logship::sink::CassandraConfig;

use crate::app::exit;
use crate::cli::ServeArgs;

pub(super) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (cassandra, serve) = match &args.config {
        None => (CassandraConfig::default(), ServeConfig::default()),
        Some(path) => match Config::load(path) {
            Ok(c) => (c.cassandra, c.serve),
            Err(e) => {
                eprintln!("logship: invalid configuration: {e}");
                return Ok(ExitCode::from(exit::CONFIG));
            }
        },
    };
    let token = serve.token_file.as_deref().map(Token::read).transpose()?;
    let listen = args.listen.unwrap_or(serve.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let reader = Reader::connect(&cassandra).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr().unwrap_or(listen);
        eprintln!(
            "logship serve: listening on http://{bound}/ (keyspace {} on {}{})",
            cassandra.keyspace,
            cassandra.endpoints_display(),
            if token.is_some() {
                ", bearer token required"
            } else {
                ""
            }
        );
        let server = Server::new(reader, token, serve.max_limit);
        logship::serve::serve(listener, server, shutdown_signal())
            .await
            .context("the HTTP server failed")?;
        eprintln!("logship serve: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the default action (exit) still stops the server.
        _ => std::future::pending().await,
    }
}
