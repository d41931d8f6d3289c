//! Helpers of the `query_*` tests: records to write through the sink, and the
//! `logship query` binary run against a keyspace.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use logship::parsers::{Level, Record};
use logship::pipeline::{FileId, FileRecord, Origin, Route, Table};
use logship::sink::{AppEvent, file_row_id};
use uuid::Uuid;

/// A file source's route with this bucket width.
pub(crate) fn route(source: &str, bucket: Duration) -> Arc<Route> {
    Arc::new(Route {
        source: source.into(),
        table: Table::InfrastructureLogs,
        ttl: None,
        bucket,
    })
}

/// Builds file records of one file, assigning byte offsets as a tailer would.
pub(crate) struct FileWriter {
    pub route: Arc<Route>,
    pub host: String,
    pub file: FileId,
    pub offset: u64,
}

impl FileWriter {
    pub(crate) fn new(route: &Arc<Route>, host: &str, inode: u64) -> FileWriter {
        FileWriter {
            route: Arc::clone(route),
            host: host.to_owned(),
            file: FileId {
                dev: 9,
                inode,
                fingerprint: inode * 7,
            },
            offset: 0,
        }
    }

    /// The next record of the file, and its row id.
    pub(crate) fn record(
        &mut self,
        ts: Timestamp,
        level: Level,
        message: &str,
        fields: &[(&str, &str)],
    ) -> (FileRecord, Uuid) {
        let len = message.len() as u64 + 1;
        let start = self.offset;
        self.offset += len;
        let record = FileRecord {
            record: Record::new(
                ts,
                level,
                Arc::clone(&self.route.source),
                self.host.as_str().into(),
                message,
                fields.iter().copied(),
            ),
            origin: Origin {
                file: self.file,
                path: format!("/var/log/{}.log", self.route.source).into(),
                start,
                end: start + len,
            },
            route: Arc::clone(&self.route),
        };
        let id = file_row_id(&self.host, self.file, start);
        (record, id)
    }
}

/// An application event of `service` on `host`.
pub(crate) fn app_event(
    service: &str,
    host: &str,
    ts: Timestamp,
    level: Level,
    message: &str,
    request_id: Option<&str>,
) -> AppEvent {
    AppEvent {
        id: Uuid::new_v4(),
        timestamp: ts,
        level,
        service: service.into(),
        host: host.into(),
        target: "shop::http".into(),
        module: Some("shop::http".into()),
        file: Some("src/http.rs".into()),
        line: Some(42),
        message: message.to_owned(),
        fields: BTreeMap::new(),
        span_fields: request_id
            .map(|r| BTreeMap::from([("request_id".to_owned(), r.to_owned())]))
            .unwrap_or_default(),
        request_id: request_id.map(str::to_owned),
        trace_id: None,
    }
}

/// A config file naming the node and keyspace, in `dir`.
pub(crate) fn write_config(dir: &Path, contact_point: &str, port: u16, keyspace: &str) -> PathBuf {
    let path = dir.join("logship.toml");
    std::fs::write(
        &path,
        format!(
            "[cassandra]\ncontact_points = [\"{contact_point}\"]\nport = {port}\nkeyspace = \"{keyspace}\"\n"
        ),
    )
    .unwrap();
    path
}

pub(crate) fn logship() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logship"))
}

/// Runs `logship query --config CONFIG ARGS...`.
pub(crate) fn query(config: &Path, args: &[&str]) -> Output {
    logship()
        .arg("query")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `id` of every JSON line of `text`.
pub(crate) fn json_ids(text: &str) -> Vec<Uuid> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
        })
        .collect()
}
