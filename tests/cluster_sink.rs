//! The sink writing flush units of 1000 rows to the three-node cluster (RF 3,
//! `LOCAL_QUORUM`) at a steady pace while node 1 is killed with kill -9 and restarted:
//! every unit is acknowledged, every row is on every replica once the hints are delivered
//! (read at `ALL`), and the unit latency before, during and after the kill is printed for
//! docs/cluster.md (behaviour numbers: three JVMs share two cores).

#[path = "support/agent.rs"]
mod agent;
#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cluster::{Cluster, load_average, percentile};
use logship::pipeline::FileId;
use logship::sink::{CassandraSink, SinkOptions};
use support::records::{expected_infra, file_records, route};

const HOST: &str = "cluster-sink-host";
/// One unit every 250 ms: 4,000 rows/s, well inside what the cluster takes on two cores.
const PACE: Duration = Duration::from_millis(250);
const UNIT: usize = 1000;

#[test]
fn flush_units_during_a_node_kill_are_all_acknowledged_and_on_every_replica() {
    let Some((cluster, _turn)) = Cluster::lock() else {
        return;
    };
    let db = cluster.db("cl_sink");
    let config = cluster.config(&db.keyspace);
    let sink = db
        .rt
        .block_on(CassandraSink::connect(&config, SinkOptions::default()))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let route = route("unit", None, Duration::from_secs(3600));

    let chaos = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(6));
            let killed = Instant::now();
            cluster.kill9(1);
            std::thread::sleep(Duration::from_secs(5));
            cluster.start(1);
            let back = Instant::now();
            std::thread::sleep(Duration::from_secs(6));
            (killed, back)
        })
    };

    let mut samples: Vec<(Instant, Duration)> = Vec::new();
    let mut expected = HashSet::new();
    db.rt.block_on(async {
        let mut unit = 0_u64;
        while !chaos.is_finished() {
            let file = FileId {
                dev: 1,
                inode: unit,
                fingerprint: 0xC1,
            };
            let records = file_records(
                &route,
                HOST,
                file,
                jiff::Timestamp::now(),
                Duration::from_micros(100),
                UNIT,
                unit,
            );
            expected.extend(records.iter().map(|r| expected_infra(r).id));
            let started = Instant::now();
            let report = sink
                .write_file_unit(&records)
                .await
                .unwrap_or_else(|e| panic!("unit {unit}: {e:#}"));
            assert_eq!(report.written, UNIT, "unit {unit}: {report:?}");
            samples.push((started, started.elapsed()));
            unit += 1;
            tokio::time::sleep(PACE.saturating_sub(started.elapsed())).await;
        }
    });
    let (killed, back) = chaos.join().expect("chaos thread");

    let phase = |from: Option<Instant>, to: Option<Instant>| -> Vec<Duration> {
        samples
            .iter()
            .filter(|(t, _)| from.is_none_or(|f| *t >= f) && to.is_none_or(|e| *t < e))
            .map(|(_, d)| *d)
            .collect()
    };
    eprintln!(
        "flush units of {UNIT} rows, one every {PACE:?}, RF 3 LOCAL_QUORUM, kill -9 of node 1 \
         (down {:?}); load {}",
        back - killed,
        load_average()
    );
    eprintln!("| phase | units | p50 | p99 | max |");
    for (name, d) in [
        ("before the kill", phase(None, Some(killed))),
        ("node 1 down", phase(Some(killed), Some(back))),
        ("after the restart", phase(Some(back), None)),
    ] {
        eprintln!(
            "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            d.len(),
            percentile(&d, 50.0).as_secs_f64() * 1e3,
            percentile(&d, 99.0).as_secs_f64() * 1e3,
            d.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        assert!(!d.is_empty(), "no unit written in phase {name}");
    }

    let took = cluster.wait_hints_delivered(&[2, 3], Duration::from_secs(90));
    eprintln!("hints delivered {took:?} after the restart");
    let rows = cluster.rows_at_all(&db.keyspace);
    let ids: HashSet<_> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), rows.len(), "duplicate row ids");
    assert_eq!(
        rows.len(),
        expected.len(),
        "rows at ALL against rows written"
    );
    assert!(
        ids == expected,
        "the rows read at ALL are not the rows written"
    );
}
