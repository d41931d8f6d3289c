//! Regression for shipping logging about itself: with the layer as the process's global
//! subscriber at TRACE, the Cassandra driver (on the layer's worker and on the app's own
//! threads), tokio and logship emit events, and none of them reaches `application_logs`.
#![cfg(feature = "layer")]

#[path = "support/layer.rs"]
mod layer_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use layer_support::{HOST, cassandra, read_rows, serial, service};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Counts the events of the driver that the subscriber saw, to prove there were some.
#[derive(Clone, Default)]
struct DriverEvents(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for DriverEvents {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target().starts_with("scylla") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn the_drivers_own_events_never_appear_in_the_table() {
    let _serial = serial();
    let Some(config) = cassandra() else { return };
    let service = service("self-events");
    let (layer, guard) = logship::layer::builder()
        .service(&service)
        .host(HOST)
        .bucket(layer_support::BUCKET)
        .level(tracing::Level::TRACE)
        .linger(Duration::from_millis(20))
        .shutdown_timeout(Duration::from_secs(60))
        .cassandra(config.clone())
        .build()
        .expect("build");
    let driver_events = DriverEvents::default();
    tracing_subscriber::registry()
        .with(layer)
        .with(driver_events.clone())
        .init();
    let start = jiff::Timestamp::now();
    tracing::info!(step = 1, "app event before the app's own driver use");
    // The app uses the driver itself too, on its own runtime and threads.
    layer_support::block_on(async {
        let session = logship::sink::session::connect(&config)
            .await
            .expect("connect");
        session
            .query_unpaged("SELECT release_version FROM system.local", ())
            .await
            .expect("query");
        tracing::info!(step = 2, "app event inside the app's runtime");
    });
    tracing::info!(step = 3, "app event after");
    let report = guard.shutdown();
    assert!(report.complete, "{report}");
    assert!(
        driver_events.0.load(Ordering::Relaxed) > 0,
        "the driver logged nothing: the test would prove nothing"
    );
    let rows = read_rows(&service, start, jiff::Timestamp::now());
    let targets: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["layer_self_events"; 3], "{rows:#?}");
}
