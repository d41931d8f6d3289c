//! `logship schema print|apply`.

use std::process::ExitCode;

use anyhow::Context as _;
use logship::config::Config;
use logship::sink::{CassandraConfig, schema, session};

use crate::cli::{OptionalConfigArg, SchemaAction};

pub(super) fn run(action: SchemaAction) -> anyhow::Result<ExitCode> {
    match action {
        SchemaAction::Print(args) => {
            print!("{}", schema::script(&cassandra(&args)?));
            Ok(ExitCode::SUCCESS)
        }
        SchemaAction::Apply(args) => {
            let config = cassandra(&args)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let added = runtime.block_on(async {
                let session = session::connect(&config).await?;
                schema::apply_reporting(&session, &config).await
            })?;
            for column in &added {
                println!("added column {column}");
            }
            println!(
                "schema applied: keyspace {} on {}",
                config.keyspace,
                config.endpoints_display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cassandra(args: &OptionalConfigArg) -> anyhow::Result<CassandraConfig> {
    match &args.config {
        None => Ok(CassandraConfig::default()),
        Some(path) => Ok(Config::load(path)?.cassandra),
    }
}
