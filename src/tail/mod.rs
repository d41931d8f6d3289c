//! Following log files into records (issue 5).
//!
//! A [`Tailer`] runs one thread per source. Each thread watches its directories through
//! inotify (one watch per directory), rescans them periodically as the source of truth,
//! reads new bytes, frames them into lines and multi-line entries, parses them, and queues
//! [`FileRecord`]s on the bounded queue, waiting when it is full.
//!
//! Delivery is at-least-once: every record carries its [`Origin`](crate::pipeline::Origin),
//! the sink acknowledges written records through an [`AckHandle`], and a file's checkpoint
//! only moves over acknowledged records. Checkpoints are written every
//! `checkpoint_interval_ms` and at [`TailerHandle::finish`].
//!
//! Typical wiring (the daemon):
//! ```no_run
//! # use logship::tail::*;
//! # use logship::pipeline::queue;
//! # fn sources() -> Vec<SourceSpec> { vec![] }
//! let (checkpointer, loaded) = Checkpointer::open("/var/lib/logship".as_ref())?;
//! let (tx, rx) = queue::bounded(10_000);
//! let mut tailer = Tailer::start(TailConfig::default(), sources(), checkpointer, loaded, tx)?;
//! let acks = tailer.acks();
//! // sink thread: let unit = rx.recv_batch(1000, ..)?; write it; acks.ack_records(&unit);
//! //              rx.give_back(unit); (its records are freed on the tailer's thread)
//! // SIGHUP:      tailer.reconfigure(new_sources)?;
//! // SIGTERM:     tailer.stop_reading(); drain the sink; tailer.finish()?;
//! # drop(rx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ack;
pub mod checkpoint;
pub mod config;
pub mod discover;
pub mod fingerprint;
pub mod reader;
mod source;
mod store;
pub mod watcher;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use logship_parsers::{FormatSpec, Parser, RecordContext, SpecError};

use crate::pipeline::{FileRecord, QueueSender, Route};

pub use ack::{AckHandle, AckTracker, Claim, FileProgress, Refused};
pub use checkpoint::{Checkpoint, CheckpointError, Checkpointer, Loaded};
pub use config::{ReadFrom, SourceTailSettings, TailConfig};
pub use discover::PatternError;
pub use source::SourceCounters;

use source::{Control, SourceContext, SourceWorker};
use store::{CheckpointStore, checkpoint_loop};

/// Field set to `"true"` on a record whose line or entry was cut at `max_line_bytes`.
pub const TRUNCATED_FIELD: &str = "truncated";

/// How a source's entries are parsed.
#[derive(Clone)]
pub enum ParserSpec {
    /// A built-in format with its options; built when the source starts.
    Format(FormatSpec),
    /// A ready parser (tests, embedding). Two specs are equal only if they share the parser.
    Custom(Arc<dyn Parser>),
}

impl ParserSpec {
    fn build(&self) -> Result<Arc<dyn Parser>, SpecError> {
        match self {
            ParserSpec::Format(f) => f.build().map(Arc::from),
            ParserSpec::Custom(p) => Ok(Arc::clone(p)),
        }
    }
}

impl PartialEq for ParserSpec {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ParserSpec::Format(a), ParserSpec::Format(b)) => a == b,
            (ParserSpec::Custom(a), ParserSpec::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for ParserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParserSpec::Format(spec) => f.debug_tuple("Format").field(spec).finish(),
            ParserSpec::Custom(p) => f.debug_tuple("Custom").field(&p.name()).finish(),
        }
    }
}

/// One file source: which files, how to parse them, where their records go.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Unique among sources; a reload keeps a source running if its spec is unchanged.
    pub name: Arc<str>,
    /// Absolute glob patterns (`*` does not cross `/`, `**` does).
    pub include: Vec<String>,
    /// Globs to leave out; one without `/` matches the file name (`*.gz`).
    pub exclude: Vec<String>,
    /// How entries become records.
    pub parser: ParserSpec,
    /// Where its records go (table, TTL, time bucket).
    pub route: Arc<Route>,
    /// Source name and host name stamped on every record.
    pub context: RecordContext,
    /// Where a file without a checkpoint is read from.
    pub read_from: ReadFrom,
    /// Longer entries are cut here and flagged.
    pub max_line_bytes: usize,
    /// How long a multi-line entry waits for a continuation line.
    pub multiline_timeout: Duration,
}

impl SourceSpec {
    /// A source with the default reading settings.
    pub fn new(
        name: &str,
        include: Vec<String>,
        parser: ParserSpec,
        route: Arc<Route>,
        host: &str,
    ) -> Self {
        let defaults = SourceTailSettings::default();
        SourceSpec {
            name: name.into(),
            include,
            exclude: Vec::new(),
            parser,
            route,
            context: RecordContext::new(name, host),
            read_from: defaults.read_from,
            max_line_bytes: defaults.max_line_bytes,
            multiline_timeout: defaults.multiline_timeout(),
        }
    }

    /// Applies a `[[source]]`'s reading settings.
    pub fn with_settings(mut self, settings: &SourceTailSettings) -> Self {
        self.read_from = settings.read_from;
        self.max_line_bytes = settings.max_line_bytes;
        self.multiline_timeout = settings.multiline_timeout();
        self
    }
}

/// Why the tailer could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A source's path patterns are not usable.
    #[error("source {name}: bad path pattern")]
    Pattern {
        /// The source (or thread) concerned.
        name: String,
        /// What is wrong with the patterns.
        #[source]
        source: PatternError,
    },
    /// A source's format spec is not valid.
    #[error("source {name}: bad format settings")]
    Format {
        /// The source (or thread) concerned.
        name: String,
        /// What is wrong with the format spec.
        #[source]
        source: SpecError,
    },
    /// Two sources have the same name.
    #[error("two sources are named {0:?}; source names must be unique")]
    DuplicateName(String),
    /// The checkpoint file could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A tailer thread could not be started.
    #[error("cannot start the thread of source {name}")]
    Spawn {
        /// The source (or thread) concerned.
        name: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// A source checked and ready to run.
struct Prepared {
    spec: SourceSpec,
    parser: Arc<dyn Parser>,
    patterns: discover::Patterns,
}

fn prepare(specs: Vec<SourceSpec>) -> Result<Vec<Prepared>, TailError> {
    let mut seen = std::collections::HashSet::new();
    specs
        .into_iter()
        .map(|spec| {
            if !seen.insert(Arc::clone(&spec.name)) {
                return Err(TailError::DuplicateName(spec.name.to_string()));
            }
            let name = spec.name.to_string();
            let patterns =
                discover::Patterns::new(&spec.include, &spec.exclude).map_err(|source| {
                    TailError::Pattern {
                        name: name.clone(),
                        source,
                    }
                })?;
            let parser = spec
                .parser
                .build()
                .map_err(|source| TailError::Format { name, source })?;
            Ok(Prepared {
                spec,
                parser,
                patterns,
            })
        })
        .collect()
}

/// Each running source's counters, shared with [`TailMonitor`]s.
type CounterList = Arc<Mutex<Vec<(Arc<str>, Arc<SourceCounters>)>>>;

/// The checkpoint thread and how to tell it to write a last time and stop.
type CheckpointWriter = (Sender<()>, JoinHandle<Result<(), CheckpointError>>);

struct Running {
    spec: SourceSpec,
    control: Sender<Control>,
    thread: JoinHandle<()>,
}

/// Starts tailers.
pub struct Tailer;

impl Tailer {
    /// Starts one thread per source and the checkpoint writer. Returns once every source
    /// has found its files (and, on a first start, the checkpoint file holds their
    /// positions). `loaded` is what [`Checkpointer::open`] found; a corrupt file was
    /// reported there and here every file is read from its beginning.
    pub fn start(
        config: TailConfig,
        sources: Vec<SourceSpec>,
        checkpointer: Checkpointer,
        loaded: Loaded,
        queue: QueueSender<FileRecord>,
    ) -> Result<TailerHandle, TailError> {
        let prepared = prepare(sources)?;
        let (first_start, checkpoints) = match loaded {
            Loaded::FirstStart => {
                tracing::info!(path = %checkpointer.path().display(), "no checkpoint file; first start");
                (true, Vec::new())
            }
            Loaded::Restored(c) => {
                tracing::info!(path = %checkpointer.path().display(), files = c.len(), "checkpoints loaded");
                (false, c)
            }
            Loaded::Corrupt { moved_to, reason } => {
                tracing::error!(
                    path = %checkpointer.path().display(),
                    moved_to = %moved_to.display(),
                    error = %reason,
                    "checkpoint file is corrupt; moved it aside and reading every file from its beginning (lines may repeat, none is lost)"
                );
                (false, Vec::new())
            }
        };
        let tracker = Arc::new(AckTracker::from_checkpoints(checkpoints));
        let store = Arc::new(CheckpointStore::new(
            checkpointer,
            Arc::clone(&tracker),
            config.checkpoint_retention(),
        ));
        let shared = SourceContext {
            tracker: Arc::clone(&tracker),
            store: Arc::clone(&store),
            open_files: Arc::new(AtomicUsize::new(0)),
            config: config.clone(),
        };
        let mut handle = TailerHandle {
            shared,
            queue: Some(queue),
            sources: HashMap::new(),
            counters: Arc::new(Mutex::new(Vec::new())),
            checkpoint: None,
        };
        let (started_tx, started_rx) = crossbeam_channel::unbounded();
        for p in prepared {
            handle.spawn(p, first_start, started_tx.clone())?;
        }
        drop(started_tx);
        // Every sender is dropped once its source found its files (or died).
        while started_rx.recv().is_ok() {}
        if first_start {
            store.save()?;
        }
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let writer = {
            let interval = config.checkpoint_interval();
            std::thread::Builder::new()
                .name("tail-checkpoints".into())
                .spawn(move || checkpoint_loop(&store, interval, &stop_rx))
                .map_err(|source| TailError::Spawn {
                    name: "checkpoints".into(),
                    source,
                })?
        };
        handle.checkpoint = Some((stop_tx, writer));
        Ok(handle)
    }
}

/// The running tailer: acknowledgements, reload, metrics and shutdown.
pub struct TailerHandle {
    shared: SourceContext,
    queue: Option<QueueSender<FileRecord>>,
    sources: HashMap<Arc<str>, Running>,
    counters: CounterList,
    checkpoint: Option<CheckpointWriter>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Sources started by the reload.
    pub added: Vec<String>,
    /// Sources stopped by the reload.
    pub removed: Vec<String>,
    /// Changed sources: stopped and started again; their files continue where the old
    /// source stopped sending, so no line is lost or repeated.
    pub restarted: Vec<String>,
    /// Sources left running as they were.
    pub unchanged: Vec<String>,
}

impl TailerHandle {
    fn spawn(
        &mut self,
        p: Prepared,
        first_start: bool,
        started: Sender<()>,
    ) -> Result<(), TailError> {
        let Some(queue) = self.queue.clone() else {
            return Ok(());
        };
        let name = Arc::clone(&p.spec.name);
        let counters = Arc::new(SourceCounters::default());
        let (control_tx, control_rx) = crossbeam_channel::bounded(1);
        let worker = SourceWorker::new(
            p.spec.clone(),
            p.parser,
            p.patterns,
            self.shared.clone(),
            queue,
            control_rx,
            Arc::clone(&counters),
        );
        let thread = std::thread::Builder::new()
            .name(format!("tail-{name}"))
            .spawn(move || worker.run(first_start, started))
            .map_err(|source| TailError::Spawn {
                name: name.to_string(),
                source,
            })?;
        lock(&self.counters).push((Arc::clone(&name), counters));
        self.sources.insert(
            name,
            Running {
                spec: p.spec,
                control: control_tx,
                thread,
            },
        );
        Ok(())
    }

    /// For the sink: acknowledges written records so checkpoints can advance.
    pub fn acks(&self) -> AckHandle {
        AckHandle::new(Arc::clone(&self.shared.tracker))
    }

    /// For metrics: a cheap, cloneable view of counters and per-file lag.
    pub fn monitor(&self) -> TailMonitor {
        TailMonitor {
            tracker: Arc::clone(&self.shared.tracker),
            counters: Arc::clone(&self.counters),
            open_files: Arc::clone(&self.shared.open_files),
        }
    }

    /// Replaces the set of sources (SIGHUP). Everything is validated before anything
    /// changes: on error the running sources are untouched. Unchanged sources keep running;
    /// removed ones stop; changed ones stop and start again, continuing each file right
    /// after the last record the old one queued. Files found by a source added now are
    /// read from their beginning (or their checkpoint).
    pub fn reconfigure(&mut self, sources: Vec<SourceSpec>) -> Result<Reconfigured, TailError> {
        let prepared = prepare(sources)?;
        let mut summary = Reconfigured::default();
        let wanted: HashMap<Arc<str>, &SourceSpec> = prepared
            .iter()
            .map(|p| (Arc::clone(&p.spec.name), &p.spec))
            .collect();
        let to_stop: Vec<Arc<str>> = self
            .sources
            .iter()
            .filter(|(name, r)| wanted.get(*name).is_none_or(|s| **s != r.spec))
            .map(|(name, _)| Arc::clone(name))
            .collect();
        self.stop_sources(&to_stop);
        let (started_tx, started_rx) = crossbeam_channel::unbounded();
        for p in prepared {
            let name = p.spec.name.to_string();
            if self.sources.contains_key(&p.spec.name) {
                summary.unchanged.push(name);
                continue;
            }
            if to_stop.contains(&p.spec.name) {
                summary.restarted.push(name);
            } else {
                summary.added.push(name);
            }
            self.spawn(p, false, started_tx.clone())?;
        }
        drop(started_tx);
        while started_rx.recv().is_ok() {}
        summary.removed = to_stop
            .iter()
            .filter(|n| !summary.restarted.iter().any(|r| r.as_str() == n.as_ref()))
            .map(|n| n.to_string())
            .collect();
        Ok(summary)
    }

    fn stop_sources(&mut self, names: &[Arc<str>]) {
        let stopping: Vec<Running> = names
            .iter()
            .filter_map(|n| self.sources.remove(n))
            .collect();
        for r in &stopping {
            let _ = r.control.try_send(Control::Stop);
        }
        for r in stopping {
            if r.thread.join().is_err() {
                tracing::error!(source = %r.spec.name, "source thread panicked");
            }
        }
        lock(&self.counters).retain(|(n, _)| !names.contains(n));
    }

    /// Stops every source and drops the queue's sending side, so the sink sees the end of
    /// the stream once it has drained the queue. Acknowledgements are still accepted.
    pub fn stop_reading(&mut self) {
        let names: Vec<Arc<str>> = self.sources.keys().cloned().collect();
        self.stop_sources(&names);
        self.queue = None;
    }

    /// Stops reading (if not done yet) and writes the final checkpoints from the
    /// acknowledged offsets. Call after the sink has drained and acknowledged.
    pub fn finish(mut self) -> Result<(), CheckpointError> {
        self.stop_reading();
        match self.checkpoint.take() {
            Some((stop, writer)) => {
                let _ = stop.send(());
                writer.join().unwrap_or(Ok(()))
            }
            None => Ok(()),
        }
    }
}

impl Drop for TailerHandle {
    fn drop(&mut self) {
        self.stop_reading();
        if let Some((stop, writer)) = self.checkpoint.take() {
            let _ = stop.send(());
            let _ = writer.join();
        }
    }
}

/// Counters of one source at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStats {
    /// The source's name.
    pub name: Arc<str>,
    /// Newline-terminated lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Records handed to the queue.
    pub records: u64,
    /// Records whose entry did not parse.
    pub parse_errors: u64,
    /// Files followed now.
    pub files: u64,
}

/// The tailer's state at one instant, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailStats {
    /// Each source's counters.
    pub sources: Vec<SourceStats>,
    /// Files being read or with records in flight; `lag` is size minus acknowledged offset.
    pub files: Vec<FileProgress>,
    /// Log files open now (bounded by `max_open_files`).
    pub open_files: usize,
}

/// A cloneable view of the tailer for a metrics endpoint.
#[derive(Clone)]
pub struct TailMonitor {
    tracker: Arc<AckTracker>,
    counters: CounterList,
    open_files: Arc<AtomicUsize>,
}

impl TailMonitor {
    /// The counters and file progress now.
    pub fn snapshot(&self) -> TailStats {
        let sources = lock(&self.counters)
            .iter()
            .map(|(name, c)| SourceStats {
                name: Arc::clone(name),
                lines: c.lines.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
                records: c.records.load(Ordering::Relaxed),
                parse_errors: c.parse_errors.load(Ordering::Relaxed),
                files: c.files.load(Ordering::Relaxed),
            })
            .collect();
        TailStats {
            sources,
            files: self.tracker.progress(),
            open_files: self.open_files.load(Ordering::Relaxed),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
