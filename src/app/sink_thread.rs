//! The sink thread: opens the configured sink (for Cassandra, connects, retrying while
//! the cluster is unreachable), then runs the drain loop on the queue until it ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context as _;
use logship::config::Config;
use logship::pipeline::FileRecord;
use logship::pipeline::drain::{self, Drain, Ended};
use logship::pipeline::queue::QueueReceiver;
use logship::sink::cassandra::{CassandraFiles, until_stopped};
use logship::sink::file::FileSink;
use logship::sink::null::NullSink;
use logship::sink::output::SinkKind;
use logship::sink::retry::Backoff;
use logship::sink::stdout::StdoutSink;
use logship::sink::{CassandraSink, SinkError, SinkOptions};
use logship::tail::AckHandle;
use tracing::{error, info};

use super::own_events::{SkipOwn, is_own};
use super::sink_state::SinkState;

/// Everything the sink thread owns.
pub(super) struct SinkThread {
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) config: Config,
    pub(super) rx: QueueReceiver<FileRecord>,
    pub(super) acks: AckHandle,
    pub(super) drain: Drain,
    pub(super) state: Arc<SinkState>,
}

impl SinkThread {
    pub(super) fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || self.run())
            .context("cannot start the sink thread")
    }

    fn run(self) {
        let Some(sink) = self.open() else {
            return;
        };
        self.drain.progress.set_connected(true);
        self.state.set_ready();
        let mut sink = SkipOwn(sink);
        let own_skipped = &self.state.own_skipped;
        let ended = self.drain.run(&self.rx, &mut sink, |unit| {
            let own = unit.iter().filter(|r| is_own(r)).count();
            own_skipped.fetch_add(own as u64, Ordering::Relaxed);
            self.acks.ack_records(unit.iter());
            // Dropped on the tailer's thread, where the records were allocated.
            self.rx.give_back(unit);
        });
        if let Ended::Stopped { unacked } = ended {
            self.count_unacked(unacked);
        }
    }

    /// Counts what shutdown leaves unacknowledged: `in_hand` plus what is still queued.
    fn count_unacked(&self, in_hand: usize) {
        let left = in_hand + self.rx.stats().depth;
        self.state.add_unacked(left as u64);
    }

    /// Opens the configured sink; `None` when it cannot be used (fatal) or shutdown came
    /// first.
    fn open(&self) -> Option<Box<dyn drain::Sink<Item = FileRecord>>> {
        let sink = &self.config.sink;
        match sink.kind {
            SinkKind::File => match FileSink::open(sink) {
                Ok(s) => Some(Box::new(s)),
                Err(e) => {
                    self.fatal(&e);
                    None
                }
            },
            SinkKind::Stdout => Some(Box::new(StdoutSink::new(sink.format))),
            SinkKind::Null => Some(Box::new(NullSink::default())),
            _ => self.connect().map(|s| {
                Box::new(CassandraFiles::new(
                    s,
                    self.runtime.clone(),
                    Arc::clone(&self.drain.progress),
                )) as Box<_>
            }),
        }
    }

    fn fatal(&self, e: &SinkError) {
        let reason = format!("{e:#}");
        error!(error = %reason, error_kind = "sink", "cannot use the sink; stopping");
        eprintln!("logship: {reason}");
        self.state.set_fatal(reason);
    }

    /// Connects, retrying while the cluster is unreachable; gives up at once on what
    /// retrying cannot fix (login, TLS, schema), which ends the agent with a clear error.
    fn connect(&self) -> Option<CassandraSink> {
        let options = SinkOptions {
            dead_letter_dir: Some(self.config.agent.data_dir.clone()),
        };
        let cassandra = &self.config.cassandra;
        let (stop, heartbeat) = (&self.drain.stop, &self.drain.heartbeat);
        let mut backoff = Backoff::new(&cassandra.retry);
        let mut logged = false;
        loop {
            heartbeat.waiting_until(Instant::now() + cassandra.connect_timeout * 2);
            let attempt = self.runtime.block_on(until_stopped(
                stop,
                CassandraSink::connect(cassandra, options.clone()),
            ));
            match attempt {
                None => break,
                Some(Ok(sink)) => {
                    info!(contact_points = %cassandra.endpoints_display(), "connected to Cassandra");
                    sink.set_request_fields(self.config.request_fields());
                    return Some(sink);
                }
                Some(Err(e @ SinkError::Unreachable { .. })) => {
                    let reason = format!("{e:#}");
                    if !logged {
                        error!(error = %reason, error_kind = "cassandra", "cannot reach Cassandra; retrying");
                        logged = true;
                    }
                    self.drain.progress.set_error(Some(reason.clone()));
                    self.state.set_problem(Some(reason));
                }
                Some(Err(e)) => {
                    self.fatal(&e);
                    return None;
                }
            }
            let delay = backoff.next_delay().min(drain::MAX_PROBE_INTERVAL);
            if stop.deadline().is_some() || !stop.sleep(delay, heartbeat) {
                break;
            }
        }
        self.count_unacked(0);
        None
    }
}
