//! What one `tracing::info!` costs the application thread with logship's layer, side by
//! side in the same run with tracing-appender's non-blocking writer feeding a JSON `fmt`
//! layer to a file, and with no layer at all (tracing's own dispatch).
//!
//! Each call is timed on its own with `Instant::now()` before and after it, so the numbers
//! include one clock read (printed as `clock`). The configurations run in interleaved
//! rounds so a noisy neighbour hits them alike. logship writes to the real local node
//! (`scripts/cassandra start` first); both writers run in their default lossy mode.
//!
//! Two runs, and every latency row prints the share of that run's events its writer
//! dropped beside it: a writer that drops most events is timed on its drop path, which is
//! not a latency result on its own.
//! 1. **paced**: each thread logs `--rate` events/s (default 10,000, which the Layer's
//!    worker keeps up with against the local node): the p50 compared with the 500 ns goal.
//! 2. **unpaced**: as fast as the threads can, far more than Cassandra absorbs; the drop
//!    fraction is printed first.
//!
//! cargo bench --features layer --bench layer_overhead -- [--events N] [--paced-events N]
//! [--threads T] [--rate R]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use logship::sink::{CassandraConfig, schema};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

const ROUNDS: usize = 10;

/// The p50 the Layer must keep on the application thread, paced.
const GOAL_P50_NS: u32 = 500;

/// One configuration's samples in one run, and how many of its events were dropped.
struct Measured {
    samples: Vec<u32>,
    sent: u64,
    dropped: u64,
}

impl Measured {
    fn drop_fraction(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.dropped as f64 / self.sent as f64
        }
    }
}

fn main() {
    let mut events: usize = 1_000_000;
    let mut paced_events: usize = 200_000;
    let mut threads: usize = 1;
    let mut rate: f64 = 10_000.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|v| v.parse().ok()).unwrap_or(events),
            "--paced-events" => {
                paced_events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(paced_events)
            }
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(threads),
            "--rate" => rate = args.next().and_then(|v| v.parse().ok()).unwrap_or(rate),
            _ => {}
        }
    }
    let threads = threads.max(1);

    let config = CassandraConfig {
        keyspace: "logship_bench".into(),
        ..CassandraConfig::default()
    };
    // The layer would run without Cassandra too, but measuring it so would flatter it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = runtime.block_on(async {
        let session = logship::sink::session::connect(&config).await?;
        schema::apply(&session, &config).await
    }) {
        eprintln!("layer_overhead: {e} (run `scripts/cassandra start` first)");
        std::process::exit(1);
    }

    let (logship_layer, logship_guard) = logship::layer::builder()
        .service("layer-bench")
        .ttl(Duration::from_secs(3600))
        .cassandra(config)
        .build()
        .expect("logship layer");
    let logship = Dispatch::new(tracing_subscriber::registry().with(logship_layer));

    let dir = tempfile::tempdir().expect("temp dir");
    let (writer, appender_guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir.path(), "bench.json"));
    let appender_drops = writer.error_counter();
    let appender_layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let appender = Dispatch::new(tracing_subscriber::registry().with(appender_layer));
    let bare = Dispatch::new(tracing_subscriber::registry());

    // Each configuration's drop counter (events its writer refused so far).
    let logship_dropped = || logship_guard.stats().dropped;
    let appender_dropped = || appender_drops.dropped_lines() as u64;
    let no_drops = || 0_u64;
    let configs: [(&str, &Dispatch, &dyn Fn() -> u64); 3] = [
        ("logship layer (Cassandra)", &logship, &logship_dropped),
        (
            "tracing-appender non-blocking + fmt JSON to a file",
            &appender,
            &appender_dropped,
        ),
        ("no layer (registry only)", &bare, &no_drops),
    ];
    // Warm-up: callsite interest, thread-local buffers, the connection.
    for (_, dispatch, _) in &configs {
        run_round(dispatch, threads, 10_000, 0, None);
    }
    std::thread::sleep(Duration::from_secs(2));

    let runs = [
        (
            format!("paced, {rate} events/s per thread"),
            paced_events,
            Some(rate),
        ),
        ("unpaced".to_owned(), events, None),
    ];
    println!(
        "per-event cost on the app thread: {threads} thread(s), {ROUNDS} interleaved rounds per run, load average {}\n",
        load_average()
    );
    println!(
        "| run | configuration | p50 ns | p90 ns | p99 ns | p99.9 ns | mean ns | events dropped |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut verdicts = Vec::new();
    for (label, events, rate) in &runs {
        let per_round = (events / ROUNDS / threads).max(1);
        let mut measured: Vec<Measured> = configs
            .iter()
            .map(|_| Measured {
                samples: Vec::with_capacity(per_round * ROUNDS * threads),
                sent: 0,
                dropped: 0,
            })
            .collect();
        for round in 0..ROUNDS {
            for (m, (_, dispatch, dropped)) in measured.iter_mut().zip(&configs) {
                let before = dropped();
                m.samples.extend(run_round(
                    dispatch,
                    threads,
                    per_round,
                    round * per_round,
                    *rate,
                ));
                m.sent += (per_round * threads) as u64;
                m.dropped += dropped().saturating_sub(before);
            }
            // Let the writers catch up between rounds, so one round's backlog does not
            // count as the next one's drops.
            if rate.is_some() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        for ((name, _, _), m) in configs.iter().zip(&mut measured) {
            let fraction = format!(
                "{:.1} % ({} of {})",
                m.drop_fraction() * 100.0,
                m.dropped,
                m.sent
            );
            print_row(label, name, &mut m.samples, &fraction);
        }
        print_row(
            label,
            "clock (two Instant::now(), nothing between)",
            &mut clock_samples(per_round * ROUNDS),
            "–",
        );
        let ours = &mut measured[0];
        let p50 = quantile(&mut ours.samples, 0.5);
        let fraction = ours.drop_fraction() * 100.0;
        verdicts.push(match rate {
            Some(_) => format!(
                "{label}: logship p50 {p50} ns against the goal of {GOAL_P50_NS} ns: {} ({fraction:.1} % dropped{})",
                if p50 <= GOAL_P50_NS { "met" } else { "NOT met" },
                if fraction > 1.0 {
                    ": the worker did not keep up, lower --rate"
                } else {
                    ""
                }
            ),
            None => format!(
                "{label}: LOGSHIP DROPPED {fraction:.1} % OF ITS EVENTS; its p50 of {p50} ns is mostly the drop path, not a latency result on its own"
            ),
        });
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
    let report = logship_guard.shutdown();
    println!("logship at shutdown: {report}");
    drop(appender_guard);
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Logs `n` events on each of `threads` threads under `dispatch`, timing every call.
fn run_round(
    dispatch: &Dispatch,
    threads: usize,
    n: usize,
    first: usize,
    rate: Option<f64>,
) -> Vec<u32> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dispatch = dispatch.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut out = Vec::with_capacity(n);
                    barrier.wait();
                    log_requests(&mut out, t, first, n, rate);
                    out
                })
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect()
}

/// A handler's logging: each request a span with its id, four events per request.
fn log_requests(out: &mut Vec<u32>, thread: usize, first: usize, n: usize, rate: Option<f64>) {
    let began = Instant::now();
    let mut i = 0;
    while i < n {
        if let Some(rate) = rate {
            let due = began + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let request_id = first + i;
        let span = tracing::info_span!("request", request_id, method = "GET", thread);
        let _enter = span.enter();
        for step in 0..4 {
            if i >= n {
                break;
            }
            let start = Instant::now();
            tracing::info!(
                user_id = 42_u64,
                path = "/api/orders",
                status = 200_u16,
                latency_ms = 3.5_f64,
                step,
                "request handled"
            );
            let ns = start.elapsed().as_nanos();
            out.push(u32::try_from(ns).unwrap_or(u32::MAX));
            i += 1;
        }
    }
}

fn clock_samples(n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            u32::try_from(start.elapsed().as_nanos()).unwrap_or(u32::MAX)
        })
        .collect()
}

fn quantile(samples: &mut [u32], p: f64) -> u32 {
    samples.sort_unstable();
    samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
}

fn print_row(run: &str, name: &str, samples: &mut [u32], dropped: &str) {
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().map(|&s| u64::from(s)).sum::<u64>() / samples.len() as u64;
    println!(
        "| {run} | {name} | {} | {} | {} | {} | {mean} | {dropped} |",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999)
    );
}
