//! The `[cassandra]` section: where the cluster is, how to log in, how hard to push it.
//!
//! Kept in the sink (not in the agent's config module) because the tracing Layer, which
//! pulls no agent code, takes the same settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;

/// How to reach and write to Cassandra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CassandraConfig {
    /// Nodes contacted first, as `host` or `host:port` (`port` applies to bare hosts). The
    /// driver discovers the rest of the cluster from them.
    pub contact_points: Vec<String>,
    /// CQL native transport port for contact points given without one.
    pub port: u16,
    /// Keyspace holding `infrastructure_logs` and `application_logs`.
    pub keyspace: String,
    /// Replication of the keyspace, used by `logship schema apply` only.
    pub replication: Replication,
    /// The datacenter this agent runs in: requests go to its nodes first and
    /// `LOCAL_QUORUM` counts its replicas. Leave unset for a single-datacenter cluster.
    pub local_datacenter: Option<String>,
    /// Consistency of writes.
    pub consistency: Consistency,
    /// Role to log in as (PasswordAuthenticator); unset for a cluster without auth.
    pub username: Option<String>,
    /// File holding the role's password (one line; the trailing newline is ignored).
    pub password_file: Option<PathBuf>,
    /// Client-to-node TLS; unset for plain text.
    pub tls: Option<TlsConfig>,
    /// Most write requests in flight at once from this agent.
    pub request_concurrency: usize,
    /// Client-side limit on one request, retries excluded (`"12s"`).
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Limit on opening one connection (`"5s"`).
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// How a flush unit is sent: `concurrent` prepared inserts or single-partition
    /// `unlogged_batch`es. See docs/schema.md for the measurement behind the default.
    pub write_mode: WriteMode,
    /// Records whose text exceeds this many bytes are truncated and flagged
    /// (`truncated = true`), so no single row nears Cassandra's mutation limit.
    pub max_record_bytes: usize,
    /// Table default TTL (`default_time_to_live`) and the basis of the compaction window;
    /// used by `logship schema apply` only (`"90d"`).
    #[serde(with = "duration")]
    pub default_ttl: Duration,
    /// Retry pacing for timeouts, unavailable and overloaded nodes, lost connections.
    pub retry: RetryConfig,
}

impl Default for CassandraConfig {
    fn default() -> Self {
        CassandraConfig {
            contact_points: vec!["127.0.0.1".to_owned()],
            port: 9042,
            keyspace: "logship".to_owned(),
            replication: Replication::default(),
            local_datacenter: None,
            consistency: Consistency::LocalQuorum,
            username: None,
            password_file: None,
            tls: None,
            request_concurrency: 128,
            request_timeout: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(5),
            write_mode: WriteMode::default(),
            max_record_bytes: 1 << 20,
            default_ttl: Duration::from_secs(90 * 86_400),
            retry: RetryConfig::default(),
        }
    }
}

impl CassandraConfig {
    /// Contact points with the port filled in, as the driver and error messages show them.
    pub fn endpoints(&self) -> Vec<String> {
        self.contact_points
            .iter()
            .map(|cp| with_port(cp, self.port))
            .collect()
    }

    /// The contact points as one string for error messages.
    pub fn endpoints_display(&self) -> String {
        self.endpoints().join(", ")
    }
}

/// A `[cassandra]` setting refused before any connection: which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {message}")]
pub struct SettingError {
    /// The key, relative to `[cassandra]` (`password_file`, `tls.ca_file`).
    pub key: &'static str,
    /// What is wrong, worded to follow the key (`is empty`), naming the file for file
    /// settings.
    pub message: String,
}

impl CassandraConfig {
    /// Everything that can be checked without a network, for the agent's config and the
    /// Layer alike: the nodes, the keyspace name, and that each file the connection will
    /// read is a readable, non-empty file *for the current user* (run as the service
    /// user, this is the check the daemon itself would fail at connect time).
    pub fn check(&self) -> Result<(), SettingError> {
        let bad = |key, message: String| Err(SettingError { key, message });
        if self.contact_points.iter().all(|cp| cp.trim().is_empty()) {
            return bad("contact_points", "is empty: name at least one node".into());
        }
        let k = &self.keyspace;
        if k.is_empty()
            || k.len() > 48
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return bad(
                "keyspace",
                format!("{k:?} is not a keyspace name (letters, digits and '_', at most 48)"),
            );
        }
        if self.request_concurrency == 0 {
            return bad("request_concurrency", "must be at least 1".into());
        }
        if self.retry.breaker_threshold == 0 {
            return bad("retry.breaker_threshold", "must be at least 1".into());
        }
        if self.retry.initial_backoff > self.retry.max_backoff {
            return bad(
                "retry.initial_backoff",
                format!(
                    "{:?} is longer than max_backoff ({:?})",
                    self.retry.initial_backoff, self.retry.max_backoff
                ),
            );
        }
        match (&self.username, &self.password_file) {
            (Some(_), None) => return bad("username", "is set without password_file".into()),
            (None, Some(_)) => return bad("password_file", "is set without username".into()),
            _ => {}
        }
        if let Some(pw) = &self.password_file {
            let text = readable_file(pw).map_err(|message| SettingError {
                key: "password_file",
                message,
            })?;
            if text.iter().all(|b| matches!(b, b'\n' | b'\r')) {
                return bad("password_file", format!("{} is empty", pw.display()));
            }
        }
        if let Some(tls) = &self.tls {
            let Some(ca) = &tls.ca_file else {
                return bad(
                    "tls.ca_file",
                    "is required: the PEM CA (or node certificate) that signs the nodes".into(),
                );
            };
            match (&tls.cert_file, &tls.key_file) {
                (Some(_), None) => return bad("tls.cert_file", "is set without key_file".into()),
                (None, Some(_)) => return bad("tls.key_file", "is set without cert_file".into()),
                _ => {}
            }
            let files = [
                ("tls.ca_file", Some(ca)),
                ("tls.cert_file", tls.cert_file.as_ref()),
                ("tls.key_file", tls.key_file.as_ref()),
            ];
            for (key, path) in files {
                if let Some(path) = path {
                    readable_file(path).map_err(|message| SettingError { key, message })?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a file the connection needs: a directory, or a file the current user may not
/// read, is refused with a message naming it.
fn readable_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    if path.is_dir() {
        return Err(format!("{} is a directory, not a file", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))
}

/// `host` → `host:port`; `host:port`, `[v6]:port` kept; a bare IPv6 address bracketed.
fn with_port(contact_point: &str, port: u16) -> String {
    let cp = contact_point.trim();
    if cp.starts_with('[') {
        if cp.contains("]:") {
            cp.to_owned()
        } else {
            format!("{cp}:{port}")
        }
    } else if cp.matches(':').count() > 1 {
        format!("[{cp}]:{port}")
    } else if cp.contains(':') {
        cp.to_owned()
    } else {
        format!("{cp}:{port}")
    }
}

/// Keyspace replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", deny_unknown_fields)]
pub enum Replication {
    /// One ring, `replication_factor` copies: a development node (RF 1).
    SimpleStrategy {
        /// Copies of each row.
        replication_factor: u32,
    },
    /// Copies per datacenter, e.g. `datacenters = { dc1 = 3, dc2 = 3 }`: production.
    NetworkTopologyStrategy {
        /// Copies of each row per datacenter name.
        datacenters: BTreeMap<String, u32>,
    },
}

impl Default for Replication {
    fn default() -> Self {
        Replication::SimpleStrategy {
            replication_factor: 1,
        }
    }
}

/// Client-to-node encryption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA (or the node certificate itself) that signs the nodes'
    /// certificates; required. Nodes are checked against their IP address, so their
    /// certificates need it as a subject alternative name (`SAN=IP:10.0.0.5`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, when the cluster requires client authentication.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Write consistency, as CQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Consistency {
    /// `ANY`: a hint anywhere counts.
    Any,
    /// `ONE` replica.
    One,
    /// `TWO` replicas.
    Two,
    /// `THREE` replicas.
    Three,
    /// `QUORUM` across datacenters.
    Quorum,
    /// `ALL` replicas.
    All,
    /// `LOCAL_QUORUM`: a quorum in the local datacenter.
    LocalQuorum,
    /// `EACH_QUORUM`: a quorum in every datacenter.
    EachQuorum,
    /// `LOCAL_ONE`: one replica in the local datacenter.
    LocalOne,
}

impl Consistency {
    pub(crate) fn to_driver(self) -> scylla::frame::types::Consistency {
        use scylla::frame::types::Consistency as C;
        match self {
            Consistency::Any => C::Any,
            Consistency::One => C::One,
            Consistency::Two => C::Two,
            Consistency::Three => C::Three,
            Consistency::Quorum => C::Quorum,
            Consistency::All => C::All,
            Consistency::LocalQuorum => C::LocalQuorum,
            Consistency::EachQuorum => C::EachQuorum,
            Consistency::LocalOne => C::LocalOne,
        }
    }
}

/// How a flush unit's rows are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// One prepared, idempotent insert per row, at most `request_concurrency` in flight.
    Concurrent,
    /// Rows grouped by partition, one `UNLOGGED` batch per partition (never across
    /// partitions), at most `request_concurrency` batches in flight. The default: on the
    /// benchmark it writes about 3× the rows/s for a tenth of the agent's CPU, because a
    /// log unit holds few partitions and each becomes one mutation on one replica set.
    #[default]
    UnloggedBatch,
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First wait after a failed attempt (`"100ms"`).
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    /// Longest wait between attempts (`"10s"`).
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Consecutive failed attempts that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the open breaker waits before a probe (`"5s"`); doubles while probes fail,
    /// but never beyond 2 s (the drain loop's `MAX_PROBE_INTERVAL`), so writes resume
    /// within about 2 s of the output taking them again.
    #[serde(with = "duration")]
    pub breaker_cooldown: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_local_dev_node() {
        let c = CassandraConfig::default();
        assert_eq!(c.endpoints(), ["127.0.0.1:9042"]);
        assert_eq!(c.consistency, Consistency::LocalQuorum);
        assert_eq!(c.default_ttl, Duration::from_secs(7_776_000));
    }

    #[test]
    fn contact_points_get_the_port_unless_they_have_one() {
        let c = CassandraConfig {
            contact_points: vec![
                "db1".into(),
                "db2:9142".into(),
                "::1".into(),
                "[::1]:9000".into(),
            ],
            port: 9043,
            ..CassandraConfig::default()
        };
        assert_eq!(
            c.endpoints(),
            ["db1:9043", "db2:9142", "[::1]:9043", "[::1]:9000"]
        );
    }

    #[test]
    fn check_refuses_unusable_settings_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = |c: CassandraConfig| c.check().unwrap_err().key;
        let with_password = |p: PathBuf| CassandraConfig {
            username: Some("u".into()),
            password_file: Some(p),
            ..CassandraConfig::default()
        };
        assert_eq!(CassandraConfig::default().check(), Ok(()));
        assert_eq!(key(with_password(dir.path().to_owned())), "password_file");
        assert_eq!(
            key(with_password(dir.path().join("missing"))),
            "password_file"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert_eq!(key(with_password(empty)), "password_file");
        let good = dir.path().join("pw");
        std::fs::write(&good, "secret\n").unwrap();
        assert_eq!(with_password(good).check(), Ok(()));
        let tls = |t: TlsConfig| CassandraConfig {
            tls: Some(t),
            ..CassandraConfig::default()
        };
        assert_eq!(key(tls(TlsConfig::default())), "tls.ca_file");
        assert_eq!(
            key(tls(TlsConfig {
                ca_file: Some(dir.path().join("nope.pem")),
                ..TlsConfig::default()
            })),
            "tls.ca_file"
        );
        let keyspace = CassandraConfig {
            keyspace: "logs; DROP".into(),
            ..CassandraConfig::default()
        };
        assert_eq!(key(keyspace), "keyspace");
    }

    #[test]
    fn deserializes_and_rejects_unknown_keys() {
        let c: CassandraConfig = serde_json::from_str(
            r#"{"contact_points":["10.0.0.1"],"consistency":"LOCAL_ONE",
                "replication":{"class":"NetworkTopologyStrategy","datacenters":{"dc1":3}},
                "request_timeout":"2s","write_mode":"unlogged_batch",
                "tls":{"ca_file":"/etc/ca.pem"}}"#,
        )
        .unwrap();
        assert_eq!(c.consistency, Consistency::LocalOne);
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.write_mode, WriteMode::UnloggedBatch);
        assert!(matches!(
            c.replication,
            Replication::NetworkTopologyStrategy { ref datacenters } if datacenters["dc1"] == 3
        ));
        let err = serde_json::from_str::<CassandraConfig>(r#"{"contact_point":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `contact_point`"), "{err}");
    }
}
