//! A real Cassandra for tests, started through `scripts/cassandra`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use logship::sink::{CassandraConfig, RetryConfig, TlsConfig};

// The one skip rule lives beside this file; declared here (and re-exported as
// `support::prereq`) so the benches that include this file alone build too.
#[path = "prereq.rs"]
pub(crate) mod prereq;

/// How to reach a node started by `scripts/cassandra`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub profile: &'static str,
    pub host: String,
    pub port: u16,
    pub datacenter: String,
    /// Secure profile: the PEM the node's certificate verifies against.
    pub ca_cert: Option<PathBuf>,
    /// Secure profile: the agent's role and its password file.
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Secure profile: the superuser (`cassandra`) and its password.
    pub superuser: Option<(String, String)>,
    /// The node's `system.log`, to print when something goes wrong.
    pub log: PathBuf,
}

impl Node {
    /// `host:port`.
    pub(crate) fn contact_point(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A sink config for this node and `keyspace`, with credentials and TLS for the
    /// secure profile and quick retries (tests wait on conditions, not on backoff).
    pub(crate) fn config(&self, keyspace: &str) -> CassandraConfig {
        CassandraConfig {
            contact_points: vec![self.host.clone()],
            port: self.port,
            keyspace: keyspace.to_owned(),
            local_datacenter: Some(self.datacenter.clone()),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            tls: self.ca_cert.as_ref().map(|ca| TlsConfig {
                ca_file: Some(ca.clone()),
                ..TlsConfig::default()
            }),
            retry: RetryConfig {
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                breaker_threshold: 5,
                breaker_cooldown: Duration::from_millis(500),
            },
            ..CassandraConfig::default()
        }
    }
}

/// The repository root (where `scripts/` is).
pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/cassandra <args>` and returns its output (never panics itself).
pub(crate) fn script(args: &[&str]) -> std::io::Result<Output> {
    Command::new(repo_root().join("scripts/cassandra"))
        .args(args)
        .output()
}

/// `scripts/cassandra <args>` with extra environment variables.
pub(crate) fn script_env(args: &[&str], env: &[(&str, &str)]) -> std::io::Result<Output> {
    Command::new(repo_root().join("scripts/cassandra"))
        .args(args)
        .envs(env.iter().copied())
        .output()
}

/// JVM options that make a node acknowledge a write only after its commit log is synced
/// (`commitlog_sync: group`). With `periodic`, a SIGKILLed node loses writes it already
/// acknowledged, which crash tests must not mistake for the agent losing them.
pub(crate) const DURABLE_COMMITLOG_JAVA_OPTS: &str = "-Dcassandra.config.allow_system_properties=true \
     -Dcassandra.settings.commitlog_sync=group -Dcassandra.settings.commitlog_sync_group_window=15ms \
     -Dcassandra.settings.commitlog_sync_period=0ms";

/// Like [`script`], panicking with the script's output when it fails.
pub(crate) fn script_ok(args: &[&str]) -> String {
    let out = script(args).unwrap_or_else(|e| panic!("cannot run scripts/cassandra: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "scripts/cassandra {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// Like [`script_ok`] with extra environment variables.
pub(crate) fn script_env_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = script_env(args, env).unwrap_or_else(|e| panic!("cannot run scripts/cassandra: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "scripts/cassandra {} failed:\n{text}",
        args.join(" ")
    );
    text
}

fn start(profile: &'static str) -> Result<Node, String> {
    let out = script(&["start", "--profile", profile])
        .map_err(|e| format!("cannot run scripts/cassandra: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/cassandra start --profile {profile} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let env = script(&["env", "--profile", profile])
        .map_err(|e| format!("cannot run scripts/cassandra env: {e}"))?;
    let vars = parse_exports(&String::from_utf8_lossy(&env.stdout));
    let get = |k: &str| vars.get(k).cloned();
    let need = |k: &str| get(k).ok_or_else(|| format!("scripts/cassandra env prints no {k}"));
    Ok(Node {
        profile,
        host: need("LOGSHIP_CASSANDRA_HOST")?,
        port: need("LOGSHIP_CASSANDRA_PORT")?
            .parse()
            .map_err(|e| format!("LOGSHIP_CASSANDRA_PORT: {e}"))?,
        datacenter: get("LOGSHIP_CASSANDRA_DATACENTER").unwrap_or_else(|| "datacenter1".into()),
        ca_cert: get("LOGSHIP_CASSANDRA_CA_CERT").map(PathBuf::from),
        username: get("LOGSHIP_CASSANDRA_USERNAME"),
        password: get("LOGSHIP_CASSANDRA_PASSWORD"),
        password_file: get("LOGSHIP_CASSANDRA_PASSWORD_FILE").map(PathBuf::from),
        superuser: get("LOGSHIP_CASSANDRA_SUPERUSER")
            .zip(get("LOGSHIP_CASSANDRA_SUPERUSER_PASSWORD")),
        log: get("LOGSHIP_CASSANDRA_LOG")
            .map(PathBuf::from)
            .unwrap_or_default(),
    })
}

fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        .collect()
}

fn node(profile: &'static str, cell: &'static OnceLock<Result<Node, String>>) -> Option<Node> {
    let started = cell.get_or_init(|| start(profile)).clone();
    prereq::require(started.map_err(|e| format!("Cassandra ({profile}) is not available: {e}")))
}

/// The plain node on 127.0.0.1:9042, started once per test process.
pub(crate) fn default_node() -> Option<Node> {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    node("default", &NODE)
}

/// The node with PasswordAuthenticator and client TLS, started once per test process.
pub(crate) fn secure_node() -> Option<Node> {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    node("secure", &NODE)
}

/// The node the daemon fault tests stop, kill -9 and restart (127.0.0.1:9342, group
/// commit log), started once per test process. Only tests/daemon_faults*.rs use it.
pub(crate) fn faults_node() -> Option<Node> {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    node("faults", &NODE)
}

/// A keyspace name no other test (or earlier run) uses.
pub(crate) fn unique_keyspace(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects and applies the schema for `config` (keyspace, tables, indexes).
pub(crate) async fn apply_schema(config: &CassandraConfig) -> scylla::client::session::Session {
    let session = logship::sink::session::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    logship::sink::schema::apply(&session, config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    session
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub(crate) async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
