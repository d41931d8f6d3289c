//! `[[source]] type = "syslog"`: syslog messages over UDP, TCP and a Unix datagram socket,
//! parsed by the syslog parser (RFC 3164 and 5424) into infrastructure records.
//!
//! Each listener runs on its own thread (each TCP connection too, at most
//! `max_connections`), so parsing never runs on the async runtime that carries the
//! Cassandra driver. Records enter the daemon's one bounded queue:
//!
//! - UDP never waits for room: a message that finds the queue full is dropped and counted
//!   (`logship_syslog_dropped_total{transport="udp"}`); the sender could not be told anyway.
//! - TCP and the Unix socket wait for room (back-pressure: the kernel's buffers fill and
//!   the sender slows down), so nothing accepted is lost while the agent runs.
//!
//! A record's origin is a stream ([`FileId::is_stream`]): an id drawn at random per
//! listener (per TCP connection) and run, and the message's sequence number in it. Row ids
//! derive from it, so they never collide across restarts; the acknowledgement path skips
//! streams, since there is no checkpoint to advance: what is queued but not yet written
//! when the agent dies is lost (docs/syslog-network.md).

mod framing;
mod listen;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use logship_parsers::{Format, FormatSpec, Parser, RecordContext};

use crate::config::SourceConfig;
use crate::limits;
use crate::pipeline::queue::SendError;
use crate::pipeline::{FileId, FileRecord, Origin, QueueSender, Route, Table};

pub(crate) use framing::{Frame, Framer};

/// Keys only a syslog source has; a file source that sets one is refused.
const SYSLOG_KEYS: [&str; 5] = ["udp", "tcp", "unix", "max_connections", "max_message_bytes"];
/// Keys a syslog source accepts.
const ALLOWED: [&str; 10] = [
    "name",
    "type",
    "timezone",
    "ttl",
    "bucket",
    "udp",
    "tcp",
    "unix",
    "max_connections",
    "max_message_bytes",
];
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default `max_message_bytes`: the largest UDP payload.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How often blocked listener threads look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// The first key of `keys` (those written in a `[[source]]` block) that only a syslog
/// source may set.
pub fn only_syslog_key(keys: &[(String, usize)]) -> Option<&'static str> {
    SYSLOG_KEYS
        .into_iter()
        .find(|k| keys.iter().any(|(written, _)| written == k))
}

/// A validated syslog source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSpec {
    /// `[[source]] name`.
    pub name: String,
    /// UDP address.
    pub udp: Option<SocketAddr>,
    /// TCP address.
    pub tcp: Option<SocketAddr>,
    /// Unix datagram socket path.
    pub unix: Option<PathBuf>,
    /// Most TCP connections at once.
    pub max_connections: usize,
    /// Longest message kept.
    pub max_message_bytes: usize,
    /// The parser's settings (format `syslog`, the zone).
    pub format: FormatSpec,
    /// Where records go.
    pub route: Arc<Route>,
    /// The agent's host: the host of Unix-socket messages that name none.
    pub host: String,
}

impl SyslogSpec {
    /// Checks `source` (a `type = "syslog"` block whose written keys are `keys`);
    /// an error names the key at fault.
    pub fn validate(
        source: &SourceConfig,
        keys: &[(String, usize)],
        host: &str,
    ) -> Result<SyslogSpec, (String, String)> {
        if let Some((key, _)) = keys.iter().find(|(k, _)| !ALLOWED.contains(&k.as_str())) {
            let msg = "is not a key of a type = \"syslog\" source";
            return Err((key.clone(), msg.into()));
        }
        Self::check(source, host).map_err(|(k, m)| (k.to_owned(), m))
    }

    fn check(source: &SourceConfig, host: &str) -> Result<SyslogSpec, (&'static str, String)> {
        let addr = |key: &'static str, v: &Option<String>| -> Result<_, (&'static str, String)> {
            v.as_deref()
                .map(|a| {
                    a.parse::<SocketAddr>()
                        .map_err(|e| (key, format!("{a:?} is not an address (ip:port): {e}")))
                })
                .transpose()
        };
        let udp = addr("udp", &source.udp)?;
        let tcp = addr("tcp", &source.tcp)?;
        if let Some(p) = &source.unix {
            if !p.is_absolute() {
                return Err(("unix", format!("{} must be an absolute path", p.display())));
            }
        }
        if udp.is_none() && tcp.is_none() && source.unix.is_none() {
            return Err(("type", "a syslog source needs udp, tcp or unix".into()));
        }
        let max_connections = source.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(("max_connections", "must be at least 1".into()));
        }
        let max_message_bytes = source
            .max_message_bytes
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        if !(64..=16 << 20).contains(&max_message_bytes) {
            return Err(("max_message_bytes", "must be from 64 to 16777216".into()));
        }
        let format = FormatSpec {
            timezone: source.timezone.clone(),
            ..FormatSpec::new(Format::Syslog)
        };
        format.build().map_err(|e| ("timezone", e.to_string()))?;
        limits::check_bucket(source.bucket).map_err(|e| {
            (
                "bucket",
                format!("{:?} is out of range: {e}", source.bucket),
            )
        })?;
        if let Some(ttl) = source.ttl {
            limits::check_ttl(ttl).map_err(|e| ("ttl", format!("{ttl:?} is out of range: {e}")))?;
        }
        Ok(SyslogSpec {
            name: source.name.clone(),
            udp,
            tcp,
            unix: source.unix.clone(),
            max_connections,
            max_message_bytes,
            format,
            route: Arc::new(Route {
                source: Arc::from(source.name.as_str()),
                table: Table::InfrastructureLogs,
                ttl: source.ttl,
                bucket: source.bucket,
            }),
            host: host.to_owned(),
        })
    }
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address or socket path cannot be bound.
    #[error("source {source_name}: cannot listen on {what}")]
    Bind {
        /// The source.
        source_name: String,
        /// `udp 127.0.0.1:514`, `unix /run/...`.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a syslog listener thread")]
    Thread(#[source] std::io::Error),
}

/// Counters of one transport of one source, read by `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
}

/// What one listener counted, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerCounts {
    /// The source's name.
    pub source: String,
    /// `udp`, `tcp` or `unix`.
    pub transport: &'static str,
    /// Messages received.
    pub received: u64,
    /// Messages dropped (UDP: the buffer was full; any: held at shutdown).
    pub dropped: u64,
}

#[derive(Debug)]
struct Listener {
    source: String,
    transport: &'static str,
    counters: Arc<Counters>,
}

/// The syslog listeners' counters. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SyslogStats {
    listeners: Arc<Mutex<Vec<Listener>>>,
}

impl SyslogStats {
    fn add(&self, source: &str, transport: &'static str) -> Arc<Counters> {
        let counters = Arc::new(Counters::default());
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Listener {
                source: source.to_owned(),
                transport,
                counters: Arc::clone(&counters),
            });
        counters
    }

    /// The counts of every listener.
    pub fn snapshot(&self) -> Vec<ListenerCounts> {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| ListenerCounts {
                source: l.source.clone(),
                transport: l.transport,
                received: l.counters.received.load(Ordering::Relaxed),
                dropped: l.counters.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The running listeners. [`stop`](Self::stop) them before draining the queue: their
/// queue senders go with them.
#[derive(Debug)]
pub struct Syslog {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: SyslogStats,
    sockets: Vec<PathBuf>,
}

/// Starts every listener of `specs`, each sending into `queue`. Binds everything first: an
/// address in use is an error before any thread runs.
pub fn spawn(specs: &[SyslogSpec], queue: &QueueSender<FileRecord>) -> Result<Syslog, StartError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = SyslogStats::default();
    let mut bound = Vec::new();
    let mut sockets = Vec::new();
    for spec in specs {
        let parser: Arc<dyn Parser> = Arc::from(
            spec.format
                .build()
                .map_err(|e| StartError::Thread(std::io::Error::other(e.to_string())))?,
        );
        let bind_err = |what: String| {
            let name = spec.name.clone();
            move |source| StartError::Bind {
                source_name: name,
                what,
                source,
            }
        };
        let emitter = |transport: &'static str, label: String| Emitter {
            parser: Arc::clone(&parser),
            route: Arc::clone(&spec.route),
            max_bytes: spec.max_message_bytes,
            queue: queue.clone(),
            counters: stats.add(&spec.name, transport),
            label: label.into(),
            stop: Arc::clone(&stop),
        };
        if let Some(addr) = spec.udp {
            let socket =
                std::net::UdpSocket::bind(addr).map_err(bind_err(format!("udp {addr}")))?;
            bound.push(listen::Bound::Udp(
                socket,
                emitter("udp", format!("udp://{addr}")),
            ));
        }
        if let Some(addr) = spec.tcp {
            let l = std::net::TcpListener::bind(addr).map_err(bind_err(format!("tcp {addr}")))?;
            let e = emitter("tcp", format!("tcp://{addr}"));
            bound.push(listen::Bound::Tcp(l, e, spec.max_connections));
        }
        if let Some(path) = &spec.unix {
            let socket =
                listen::bind_unix(path).map_err(bind_err(format!("unix {}", path.display())))?;
            sockets.push(path.clone());
            let e = emitter("unix", format!("unix://{}", path.display()));
            bound.push(listen::Bound::Unix(
                socket,
                e,
                Arc::from(spec.host.as_str()),
            ));
        }
    }
    let mut threads = Vec::new();
    for b in bound {
        threads.push(b.spawn().map_err(StartError::Thread)?);
    }
    Ok(Syslog {
        stop,
        threads,
        stats,
        sockets,
    })
}

impl Syslog {
    /// The listeners' counters, for `/metrics`.
    pub fn stats(&self) -> SyslogStats {
        self.stats.clone()
    }

    /// Stops listening, waits for every listener and connection thread (each hands on
    /// the message it holds, if the queue takes it within a moment) and removes the Unix
    /// sockets.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a syslog listener thread panicked");
            }
        }
        for path in &self.sockets {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a listener's messages become records and enter the queue.
#[derive(Clone)]
pub(crate) struct Emitter {
    parser: Arc<dyn Parser>,
    route: Arc<Route>,
    max_bytes: usize,
    queue: QueueSender<FileRecord>,
    counters: Arc<Counters>,
    /// The listener (`udp://127.0.0.1:5514`): the rows' `file_path`.
    label: Arc<str>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// One stream of messages (a UDP or Unix listener, a TCP connection): its identity, the
/// next sequence number and the host of messages that name none.
#[derive(Debug)]
pub(crate) struct Stream {
    id: FileId,
    seq: u64,
    ctx: RecordContext,
    /// Host names seen in messages, shared between their records.
    hosts: HashMap<Box<str>, Arc<str>>,
}

/// Host names remembered per stream; more distinct names than this are not shared.
const MAX_HOSTS: usize = 1024;

impl Stream {
    /// A stream whose messages without a host name get `host`.
    pub(crate) fn new(route: &Route, host: Arc<str>) -> Stream {
        Stream {
            id: FileId {
                dev: FileId::STREAM_DEV,
                inode: rand::random(),
                fingerprint: 0,
            },
            seq: 0,
            ctx: RecordContext {
                source: Arc::clone(&route.source),
                host,
            },
            hosts: HashMap::new(),
        }
    }

    /// Messages without a host name get `host` from now on (UDP: the datagram's peer).
    pub(crate) fn set_host(&mut self, host: &str) {
        if *self.ctx.host != *host {
            self.ctx.host = Arc::from(host);
        }
    }

    fn host(&mut self, name: &str) -> Arc<str> {
        if let Some(h) = self.hosts.get(name) {
            return Arc::clone(h);
        }
        let h: Arc<str> = Arc::from(name);
        if self.hosts.len() < MAX_HOSTS {
            self.hosts.insert(name.into(), Arc::clone(&h));
        }
        h
    }
}

/// How a record is handed to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Drop and count when the queue is full (UDP).
    DropWhenFull,
    /// Wait for room (TCP, Unix socket).
    Wait,
}

/// Why a listener thread should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped;

impl Emitter {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Parses `message` into a record of `stream` and queues it.
    pub(crate) fn emit(
        &self,
        stream: &mut Stream,
        message: &[u8],
        frame: Frame,
        mode: Mode,
    ) -> Result<(), Stopped> {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let now = jiff::Timestamp::now();
        let (message, cut) = if message.len() > self.max_bytes {
            (&message[..self.max_bytes], true)
        } else {
            (message, frame == Frame::Cut)
        };
        let mut record = match frame {
            Frame::Broken { expected } => stream.ctx.unparsed(
                message,
                format!(
                    "syslog: the connection closed {} bytes into a {expected}-byte frame",
                    message.len()
                ),
                now,
            ),
            _ => self.parser.record(message, &stream.ctx, now),
        };
        record.read_at = now;
        if let Some(h) = record.field("hostname") {
            record.host = stream.host(h);
        }
        if cut {
            record.set_field(crate::tail::TRUNCATED_FIELD, "true");
        }
        let seq = stream.seq;
        stream.seq += 1;
        let rec = FileRecord {
            record,
            origin: Origin {
                file: stream.id,
                path: Arc::clone(&self.label),
                start: seq,
                end: seq + 1,
            },
            route: Arc::clone(&self.route),
        };
        match mode {
            Mode::DropWhenFull => {
                if !self.queue.try_send(rec) {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Mode::Wait => self.send(rec),
        }
    }

    /// Waits for room; once the listeners are stopping, gives up after one more wait
    /// (the queue may never empty if the sink is down).
    fn send(&self, mut rec: FileRecord) -> Result<(), Stopped> {
        loop {
            crate::pipeline::heartbeat::waiting_until(std::time::Instant::now() + POLL * 2);
            let stopping = self.stopping();
            match self.queue.send_timeout(rec, POLL) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(_)) => return Err(Stopped),
                Err(SendError::Full(r)) if stopping => {
                    drop(r);
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return Err(Stopped);
                }
                Err(SendError::Full(r)) => rec = r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigFile};

    fn load(text: &str) -> Result<Config, String> {
        let file = ConfigFile::from_text(Path::new("/main.toml"), text, |_| None).unwrap();
        Config::from_files(&[file]).map_err(|e| e.to_string())
    }

    #[test]
    fn a_syslog_source_is_validated_into_its_listeners() {
        let c = load(
            "[[source]]\nname = \"net\"\ntype = \"syslog\"\nudp = \"127.0.0.1:5514\"\n\
             unix = \"/run/logship/syslog.sock\"\nttl = \"7d\"\n\n\
             [[source]]\nname = \"files\"\npaths = [\"/x\"]\nformat = \"syslog\"\n",
        )
        .unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.syslog.len(), 1);
        let s = &c.syslog[0];
        assert_eq!(s.udp, Some("127.0.0.1:5514".parse().unwrap()));
        assert_eq!(s.tcp, None);
        assert_eq!(s.max_connections, super::DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.route.table.name(), "infrastructure_logs");
        assert_eq!(
            s.route.ttl,
            Some(std::time::Duration::from_secs(7 * 86_400))
        );
    }

    #[test]
    fn keys_of_the_other_type_are_refused_at_their_line() {
        let e = load("[[source]]\nname = \"net\"\ntype = \"syslog\"\ntcp = \"127.0.0.1:1\"\npaths = [\"/x\"]\n")
            .unwrap_err();
        assert!(
            e.starts_with(
                "/main.toml:5:1: source[net].paths: is not a key of a type = \"syslog\" source"
            ),
            "{e}"
        );
        let e = load("[[source]]\nname = \"f\"\npaths = [\"/x\"]\nformat = \"syslog\"\nudp = \"127.0.0.1:1\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("/main.toml:5:1: source[f].udp: is a key of type = \"syslog\" sources"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let base = "[[source]]\nname = \"net\"\ntype = \"syslog\"\n";
        let cases = [
            (
                "",
                "source[net].type: a syslog source needs udp, tcp or unix",
            ),
            (
                "udp = \"localhost\"\n",
                "source[net].udp: \"localhost\" is not an address",
            ),
            (
                "unix = \"rel.sock\"\n",
                "source[net].unix: rel.sock must be an absolute path",
            ),
            (
                "tcp = \"127.0.0.1:1\"\nmax_connections = 0\n",
                "source[net].max_connections: must be at least 1",
            ),
            (
                "tcp = \"127.0.0.1:1\"\nmax_message_bytes = 10\n",
                "source[net].max_message_bytes: must be from 64",
            ),
            (
                "tcp = \"127.0.0.1:1\"\ntimezone = \"Mars/Base\"\n",
                "source[net].timezone:",
            ),
        ];
        for (keys, want) in cases {
            let e = load(&format!("{base}{keys}")).unwrap_err();
            assert!(e.contains(want), "{keys:?}: {e}");
        }
        let e = load("[[source]]\nname = \"net\"\ntype = \"pigeon\"\n").unwrap_err();
        assert!(e.starts_with("/main.toml:3:"), "{e}");
        assert!(e.contains("unknown variant `pigeon`"), "{e}");
    }
}
