//! The real `logship` binary under test: a temp directory with its config, logs and data
//! dir; the child process with its stderr collected; signals; `/metrics` and `/health`;
//! the rows it wrote, read back from the local Cassandra.
//!
//! Included by the `daemon_*` tests with `mod support; #[path = "support/agent.rs"] mod agent;`
//! so the shared `support` module stays as its owner wrote it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::cassandra::{Node, apply_schema, default_node, unique_keyspace};
use crate::support::records::{InfraRow, read_all_infra};

/// How long a test waits for rows or log lines before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(90);

/// Polls `check` every 100 ms until it returns `Some`; panics naming `what` after `timeout`.
pub(crate) fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port on 127.0.0.1 nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// One nginx `combined` line whose request path carries `n` (`/line/<n>`), stamped now.
pub(crate) fn nginx_line(n: u64) -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    format!(
        "10.1.{}.{} - - [{}] \"GET /line/{n}?q=x HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) test\"\n",
        (n / 250) % 250,
        n % 250,
        now.strftime("%d/%b/%Y:%H:%M:%S %z"),
        512 + n % 1000,
    )
}

/// Appends lines `from..to` to `path` in one write per 1000 lines.
pub(crate) fn append_lines(path: &Path, from: u64, to: u64) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut chunk = String::new();
    for n in from..to {
        chunk.push_str(&nginx_line(n));
        if chunk.len() > 64 * 1024 {
            f.write_all(chunk.as_bytes()).expect("append lines");
            chunk.clear();
        }
    }
    f.write_all(chunk.as_bytes()).expect("append lines");
}

/// The line number a row's message carries (`/line/<n>`).
pub(crate) fn line_number(message: &str) -> Option<u64> {
    let rest = message.split("/line/").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A `[[source]]` of the config.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: String,
    pub glob: String,
    pub format: &'static str,
}

impl Source {
    pub(crate) fn nginx(name: &str, glob: &Path) -> Source {
        Source {
            name: name.to_owned(),
            glob: glob.display().to_string(),
            format: "nginx",
        }
    }

    pub(crate) fn toml(&self) -> String {
        format!(
            "\n[[source]]\nname = \"{}\"\npaths = [\"{}\"]\nexclude = [\"*.gz\"]\nformat = \"{}\"\n",
            self.name, self.glob, self.format
        )
    }
}

/// A keyspace of its own on the local node, with the schema applied, and a session to
/// read it back; `None` (test skipped) when no node can start outside CI.
pub(crate) struct Db {
    pub rt: tokio::runtime::Runtime,
    pub session: scylla::client::session::Session,
    pub keyspace: String,
    pub node: Node,
}

impl Db {
    /// A keyspace on the default node (127.0.0.1:9042).
    pub(crate) fn new(prefix: &str) -> Option<Db> {
        Db::on(default_node()?, prefix)
    }

    /// A keyspace on `node` (e.g. `faults_node()`), with the schema applied.
    pub(crate) fn on(node: Node, prefix: &str) -> Option<Db> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let keyspace = unique_keyspace(prefix);
        let session = rt.block_on(apply_schema(&node.config(&keyspace)));
        Some(Db {
            rt,
            session,
            keyspace,
            node,
        })
    }

    /// Waits until this test's own session reads again after its node came back: the
    /// driver reconnects its pool on its own schedule, which may trail the agent's.
    pub(crate) fn wait_readable(&self) {
        wait_until(WAIT, "the test's session to reach its node again", || {
            self.rt
                .block_on(
                    self.session
                        .query_unpaged("SELECT release_version FROM system.local", &[]),
                )
                .ok()
                .map(drop)
        });
    }

    /// Every row of this keyspace's `infrastructure_logs`.
    pub(crate) fn rows(&self) -> Vec<InfraRow> {
        self.rt
            .block_on(read_all_infra(&self.session, &self.keyspace))
    }

    /// Rows of one source and host.
    pub(crate) fn rows_of(&self, source: &str, host: &str) -> Vec<InfraRow> {
        self.rows()
            .into_iter()
            .filter(|r| r.source == source && r.host == host)
            .collect()
    }

    /// Waits until `source`/`host` has at least `n` rows; returns them.
    pub(crate) fn wait_rows(&self, source: &str, host: &str, n: usize) -> Vec<InfraRow> {
        let start = Instant::now();
        loop {
            let rows = self.rows_of(source, host);
            if rows.len() >= n {
                return rows;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out after {WAIT:?}: {} of {n} rows of {source}/{host} in {}",
                rows.len(),
                self.keyspace
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The `[cassandra]` section for this keyspace.
    pub(crate) fn cassandra_toml(&self) -> String {
        format!(
            "[cassandra]\ncontact_points = [\"{}\"]\nport = {}\nkeyspace = \"{}\"\n",
            self.node.host, self.node.port, self.keyspace
        )
    }

    /// The `[cassandra]` section for this keyspace reached through `contact_point`
    /// (`host:port`, e.g. a test proxy in front of the node).
    pub(crate) fn cassandra_toml_via(&self, contact_point: &str) -> String {
        format!(
            "[cassandra]\ncontact_points = [\"{contact_point}\"]\nkeyspace = \"{}\"\n",
            self.keyspace
        )
    }
}

/// Asserts that `rows` hold every line number of `0..n` exactly once, with distinct ids.
pub(crate) fn assert_exactly_once(rows: &[InfraRow], n: u64, what: &str) {
    let ids: std::collections::HashSet<_> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), rows.len(), "{what}: duplicate row ids");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for r in rows {
        let Some(k) = line_number(&r.message) else {
            panic!("{what}: a row without a line number: {:?}", r.message);
        };
        *seen.entry(k).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(dups.is_empty(), "{what}: lines shipped twice: {dups:?}");
    let missing: Vec<u64> = (0..n).filter(|k| !seen.contains_key(k)).take(20).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {n} lines missing, first: {missing:?}",
        (0..n).filter(|k| !seen.contains_key(k)).count()
    );
    let extra: Vec<_> = seen.keys().filter(|k| **k >= n).take(10).collect();
    assert!(extra.is_empty(), "{what}: unexpected lines {extra:?}");
    assert_eq!(rows.len() as u64, n, "{what}: row count");
}

/// A temp directory holding `logship.toml`, `conf.d/`, `logs/` and `data/`.
pub(crate) struct Workspace {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub metrics_port: u16,
}

impl Workspace {
    pub(crate) fn new(host: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        fs::create_dir_all(dir.path().join("conf.d")).expect("conf.d");
        Workspace {
            dir,
            host: host.to_owned(),
            metrics_port: free_port(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.path().join("logship.toml")
    }

    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.path().join("logs").join(name)
    }

    pub(crate) fn dropin(&self, name: &str) -> PathBuf {
        self.path().join("conf.d").join(name)
    }

    /// The `[agent]` and `[metrics]` sections (fast rescans so tests wait less).
    pub(crate) fn agent_toml(&self) -> String {
        format!(
            "[agent]\ndata_dir = \"{}\"\nhost = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{}\"\n\n\
             [tail]\nrescan_interval = \"500ms\"\npoll_interval = \"200ms\"\nrotate_wait = \"3s\"\n\n",
            self.path().join("data").display(),
            self.host,
            self.metrics_port
        )
    }

    /// Writes the main config: agent sections, `extra` (other sections), then sources.
    pub(crate) fn write_config(&self, db: Option<&Db>, extra: &str, sources: &[Source]) {
        let mut text = self.agent_toml();
        if let Some(db) = db {
            text.push_str(&db.cassandra_toml());
        }
        text.push_str(extra);
        for s in sources {
            text.push_str(&s.toml());
        }
        fs::write(self.config(), text).expect("write config");
    }

    /// Runs `logship <args>` to completion (no Cassandra involved).
    pub(crate) fn run_cli(&self, args: &[&str]) -> CliOutput {
        let out = base_command()
            .args(args)
            .output()
            .expect("run the logship binary");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: strip_ansi(&String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Starts `logship run --config <this config>`.
    pub(crate) fn spawn(&self, env: &[(&str, &str)]) -> Agent {
        Agent::spawn(&self.config(), self.metrics_port, env)
    }
}

#[derive(Debug)]
pub(crate) struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The binary with an environment free of the caller's systemd and log settings.
fn base_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logship"));
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "JOURNAL_STREAM",
        "LOGSHIP_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Removes ANSI colour sequences, so assertions read the text.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running agent. Dropping it kills the process, so a failed test leaves nothing behind.
pub(crate) struct Agent {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub metrics_port: u16,
}

impl Agent {
    pub(crate) fn spawn(config: &Path, metrics_port: u16, env: &[(&str, &str)]) -> Agent {
        let mut cmd = base_command();
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn logship run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let mut all = sink.lock().unwrap_or_else(|p| p.into_inner());
                all.push_str(&line);
                line.clear();
            }
        });
        Agent {
            child,
            stderr,
            metrics_port,
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What the agent wrote on stderr so far, raw (colour codes kept).
    pub(crate) fn stderr_raw(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the agent wrote on stderr so far, without colour codes.
    pub(crate) fn stderr(&self) -> String {
        strip_ansi(&self.stderr_raw())
    }

    /// Waits until stderr contains `needle`; panics with the whole stderr otherwise.
    pub(crate) fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader thread a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(200));
                if self.stderr().contains(needle) {
                    return;
                }
                panic!(
                    "the agent exited ({status}) before logging {needle:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {needle:?} in stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for "logship ready".
    pub(crate) fn wait_ready(&mut self) {
        self.wait_log("logship ready", WAIT);
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped while `self` lives.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit; panics with stderr after `timeout`.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "the agent did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` and reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET `path` on the metrics listener: (status code, body); `None` if it cannot connect.
    pub(crate) fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics_port, path)
    }

    /// The `/metrics` text (panics if the endpoint does not answer 200).
    pub(crate) fn metrics(&self) -> String {
        match self.get("/metrics") {
            Some((200, body)) => body,
            other => panic!("/metrics answered {other:?}; stderr:\n{}", self.stderr()),
        }
    }

    /// The value of the sample `series` (`name{labels}` exactly as rendered), if present.
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics(), series)
    }

    /// Waits until every file is read to its end and acknowledged (checkpoint lag 0 over
    /// every file) and the buffer is empty: nothing more can arrive after that.
    pub(crate) fn wait_settled(&self) {
        wait_until(WAIT, "checkpoint lag 0 and an empty buffer", || {
            let m = self.metrics();
            let depth = metric_value(&m, "logship_buffer_depth{}")?;
            (total_lag(&m) == 0.0 && depth == 0.0).then_some(())
        });
    }
}

/// The sum of `logship_checkpoint_lag_bytes` over every file in Prometheus text.
pub(crate) fn total_lag(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("logship_checkpoint_lag_bytes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value of `series` in Prometheus text.
pub(crate) fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// A bare HTTP/1.1 GET (no client library needed for two local endpoints).
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut req = String::new();
    let _ = write!(
        req,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Resident memory of process `pid` in KiB (`VmRSS`), `None` once it is gone.
pub(crate) fn rss_kib(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A file opened for appending, for writers that keep it open across a rotation.
pub(crate) fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}
