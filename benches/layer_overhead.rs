//! What one `tracing::info!` costs the application thread with logship's layer, side by
//! side in the same run with tracing-appender's non-blocking writer feeding a JSON `fmt`
//! layer to a file, and with no layer at all (tracing's own dispatch).
//!
//! Each call is timed on its own with `Instant::now()` before and after it, so the numbers
//! include one clock read (printed as `clock`). The configurations run in interleaved
//! rounds so a noisy neighbour hits them alike. logship writes to the real local node
//! (`scripts/cassandra start` first); both writers run in their default lossy mode, and
//! the drops are printed.
//!
//! `--rate R` paces each thread to R events per second (default: as fast as it can, which
//! is far more than Cassandra absorbs, so most of logship's events take the drop path).
//!
//! cargo bench --features layer --bench layer_overhead -- [--events N] [--threads T] [--rate R]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use logship::sink::{CassandraConfig, schema};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

const ROUNDS: usize = 10;

fn main() {
    let mut events: usize = 1_000_000;
    let mut threads: usize = 1;
    let mut rate: Option<f64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|v| v.parse().ok()).unwrap_or(events),
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(threads),
            "--rate" => rate = args.next().and_then(|v| v.parse().ok()),
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
    let appender_layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let appender = Dispatch::new(tracing_subscriber::registry().with(appender_layer));
    let bare = Dispatch::new(tracing_subscriber::registry());

    let configs: [(&str, &Dispatch); 3] = [
        ("logship layer (Cassandra)", &logship),
        (
            "tracing-appender non-blocking + fmt JSON to a file",
            &appender,
        ),
        ("no layer (registry only)", &bare),
    ];
    let per_round = (events / ROUNDS / threads).max(1);
    let mut samples: Vec<Vec<u32>> = vec![Vec::with_capacity(events); configs.len()];
    // Warm-up: callsite interest, thread-local buffers, the connection.
    for (_, dispatch) in &configs {
        run_round(dispatch, threads, 10_000, 0, None);
    }
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..ROUNDS {
        for (i, (_, dispatch)) in configs.iter().enumerate() {
            samples[i].extend(run_round(
                dispatch,
                threads,
                per_round,
                round * per_round,
                rate,
            ));
        }
    }
    let clock = clock_samples(per_round * ROUNDS);

    let logship_stats = logship_guard.stats();
    println!(
        "per-event cost on the app thread: {} events per configuration, {threads} thread(s), {ROUNDS} interleaved rounds, {}\n",
        per_round * ROUNDS * threads,
        rate.map_or("unpaced".to_owned(), |r| format!(
            "paced at {r} events/s per thread"
        ))
    );
    println!("| configuration | p50 ns | p90 ns | p99 ns | p99.9 ns | mean ns |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((name, _), s) in configs.iter().zip(&mut samples) {
        print_row(name, s);
    }
    print_row(
        "clock (two Instant::now(), nothing between)",
        &mut clock.clone(),
    );
    println!();
    println!(
        "logship: {} dropped (buffer full) of {} sent; {} written by the end of the timed rounds",
        logship_stats.dropped,
        (per_round * ROUNDS + 10_000) * threads,
        logship_stats.written
    );
    let report = logship_guard.shutdown();
    println!("logship at shutdown: {report}");
    drop(appender_guard);
    let lines = std::fs::read_to_string(dir.path().join("bench.json"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    println!(
        "tracing-appender: {lines} lines in the file of {} sent ({} dropped)",
        (per_round * ROUNDS + 10_000) * threads,
        (per_round * ROUNDS + 10_000) * threads - lines
    );
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

fn print_row(name: &str, samples: &mut [u32]) {
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().map(|&s| u64::from(s)).sum::<u64>() / samples.len() as u64;
    println!(
        "| {name} | {} | {} | {} | {} | {mean} |",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999)
    );
}
