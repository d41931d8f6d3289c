//! The row-id derivation, pinned to fixed vectors.
//!
//! A file entry's row id is `uuid_v5(namespace, host NUL dev inode fingerprint offset)`
//! (`sink::file_row_id`): replaying an entry after a crash rewrites the same row instead of
//! adding one. If an upgrade changed the namespace, the byte layout or the hash, every entry
//! replayed across that upgrade would land twice; these vectors make such a change fail here
//! first. Change them only together with a documented migration.
//!
//! An application event's id is a random v4 UUID fixed at capture, so the Layer's retries of
//! a unit rewrite the same rows; pinned below by its version and by staying the same across
//! a failed and a repeated write.
//! (The second test needs the `layer` feature, which `cargo test --all-features` enables.)

use logship::pipeline::FileId;
use logship::sink::file_row_id;
use uuid::Uuid;

fn id(host: &str, dev: u64, inode: u64, fingerprint: u64, offset: u64) -> String {
    file_row_id(
        host,
        FileId {
            dev,
            inode,
            fingerprint,
        },
        offset,
    )
    .to_string()
}

#[test]
fn file_row_ids_match_the_fixed_vectors() {
    // (host, dev, inode, fingerprint, offset) -> id. Computed independently of this crate
    // (Python: uuid v5 = SHA-1 of the namespace 6c6f6773-6869-5004-a1b2-9c3d5e7f0815 and
    // host, NUL, then dev, inode, fingerprint, offset as big-endian u64) and frozen: these
    // are the ids rows already written carry.
    let vectors: [(&str, u64, u64, u64, u64, &str); 6] = [
        ("", 0, 0, 0, 0, VECTORS[0]),
        ("web1", 1, 2, 3, 100, VECTORS[1]),
        ("web1", 1, 2, 3, 101, VECTORS[2]),
        ("web2", 1, 2, 3, 100, VECTORS[3]),
        (
            "db-7.example.org",
            0xfd01,
            1_234_567,
            0xdead_beef_cafe_f00d,
            987_654_321_012,
            VECTORS[4],
        ),
        (
            "ünïcødé-host",
            u64::MAX,
            u64::MAX,
            u64::MAX,
            u64::MAX,
            VECTORS[5],
        ),
    ];
    for (host, dev, inode, fp, offset, want) in vectors {
        let got = id(host, dev, inode, fp, offset);
        assert_eq!(
            got, want,
            "file_row_id({host:?}, dev {dev}, inode {inode}, fingerprint {fp:#x}, offset {offset}) \
             changed: every replayed entry would be written as a second row"
        );
        let parsed = Uuid::parse_str(&got).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 5, "name-based (SHA-1) ids");
    }
}

const VECTORS: [&str; 6] = [
    "42349cb3-bc83-53f2-9d9f-75ac7a0d3047",
    "b86e03b1-a870-57fd-9443-c644148e8844",
    "a6cab2ce-901d-5ff7-8591-880f0df679cf",
    "9de59c28-ead5-5243-93b6-11a7f2791a48",
    "81b2339c-05bd-5208-ba52-f400f60fb891",
    "aec38a5b-7afb-5713-9b2f-fb064251ce18",
];

#[cfg(feature = "layer")]
mod app_ids {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use logship::layer::{self, CapturedEvent, EventWriter, StopSignal, WriteError};
    use tracing_subscriber::prelude::*;
    use uuid::Uuid;

    /// Fails its first write, then keeps every id it is given.
    #[derive(Clone, Default)]
    struct FlakyWriter {
        attempts: Arc<AtomicUsize>,
        seen: Arc<Mutex<Vec<Vec<Uuid>>>>,
    }

    impl EventWriter for FlakyWriter {
        fn write(&mut self, unit: &[CapturedEvent], _stop: &StopSignal) -> Result<(), WriteError> {
            self.seen
                .lock()
                .unwrap()
                .push(unit.iter().map(CapturedEvent::id).collect());
            if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err("the first attempt fails".into());
            }
            Ok(())
        }
    }

    #[test]
    fn app_event_ids_are_random_v4_fixed_at_capture_and_kept_across_retries() {
        let writer = FlakyWriter::default();
        let (layer, guard) = layer::builder()
            .service("row-ids")
            .flush_size(50)
            .writer(writer.clone())
            .build()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..50 {
                tracing::info!(i, "event {i}");
            }
        });
        let report = guard.shutdown();
        assert!(report.complete, "{report}");
        let seen = writer.seen.lock().unwrap().clone();
        assert!(seen.len() >= 2, "a failed write and its retry: {seen:?}");
        let (first, retry) = (&seen[0], &seen[1]);
        assert_eq!(first, retry, "the retried unit carries the same ids");
        let unique: HashSet<_> = first.iter().collect();
        assert_eq!(unique.len(), first.len(), "ids are distinct");
        for id in first {
            assert_eq!(id.get_version_num(), 4, "{id}: random (v4) ids");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
