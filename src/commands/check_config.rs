//! `logship check-config`: validate and show what would be watched.

use std::path::Path;
use std::process::ExitCode;

use logship::config::Config;
use logship::tail::discover::Patterns;

use crate::app::exit;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logship: invalid configuration: {e}");
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    let c = &config.raw.cassandra;
    println!(
        "config ok: {}",
        config
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("host: {}", config.host);
    println!(
        "cassandra: {} keyspace {} consistency {:?}{}{}",
        c.endpoints_display(),
        c.keyspace,
        c.consistency,
        c.username
            .as_ref()
            .map(|u| format!(" user {u}"))
            .unwrap_or_default(),
        if c.tls.is_some() { " tls" } else { "" },
    );
    println!("data_dir: {}", config.raw.agent.data_dir.display());
    if config.sources.is_empty() {
        println!("no [[source]] configured: the agent would ship nothing");
    }
    for (raw, spec) in config.raw.sources.iter().zip(&config.sources) {
        let ttl = raw
            .ttl
            .map(|t| format!("{} s", t.as_secs()))
            .unwrap_or_else(|| "table default".into());
        println!(
            "source {} (format {}, table {}, ttl {}, bucket {} s, read_from {:?})",
            raw.name,
            raw.format,
            spec.route.table.name(),
            ttl,
            raw.bucket.as_secs(),
            raw.read_from,
        );
        let scan = Patterns::new(&spec.include, &spec.exclude)?.scan();
        for dir in &scan.dirs {
            println!("  watch {}", dir.display());
        }
        for dir in &scan.missing {
            println!("  missing {} (polled until it exists)", dir.display());
        }
        for file in &scan.files {
            println!("  file {}", file.display());
        }
        if scan.files.is_empty() {
            println!("  no file matches yet");
        }
    }
    Ok(ExitCode::SUCCESS)
}
