//! `logship check-config`: validate (the same [`Config::load`] as `run`) and show what
//! would be watched.

use std::path::Path;
use std::process::ExitCode;

use logship::config::Config;
use logship::tail::ParserSpec;
use logship::tail::discover::Patterns;

use crate::app::exit;

pub(super) fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logship: invalid configuration: {e}");
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    for warning in &config.warnings {
        eprintln!("logship: warning: {warning}");
    }
    let c = &config.cassandra;
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
    println!("data_dir: {}", config.agent.data_dir.display());
    if config.sources.is_empty() {
        println!("no [[source]] configured: the agent would ship nothing");
    }
    for spec in &config.sources {
        let ttl = spec
            .route
            .ttl
            .map(|t| format!("{} s", t.as_secs()))
            .unwrap_or_else(|| "table default".into());
        let format = match &spec.parser {
            ParserSpec::Format(f) => f.format.name(),
            ParserSpec::Custom(_) => "custom",
        };
        println!(
            "source {} (format {}, table {}, ttl {}, bucket {} s, read_from {:?})",
            spec.name,
            format,
            spec.route.table.name(),
            ttl,
            spec.route.bucket.as_secs(),
            spec.read_from,
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
