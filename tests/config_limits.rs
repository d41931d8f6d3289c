//! The agent's config and the tracing Layer accept exactly the same TTLs and bucket widths:
//! one definition (`logship::limits`), checked by both.
#![cfg(all(feature = "layer", feature = "agent"))]

use std::path::Path;
use std::time::Duration;

use logship::config::{Config, ConfigFile};
use logship::layer;

/// Whether the agent's config takes `[[source]] key = "value"`.
fn agent_accepts(key: &str, value: &str) -> bool {
    let text = format!(
        "[agent]\nhost = \"h\"\n[[source]]\nname = \"web\"\npaths = [\"/var/log/x.log\"]\nformat = \"syslog\"\n{key} = \"{value}\"\n"
    );
    let file = ConfigFile::from_text(Path::new("/limits.toml"), &text, |_| None).unwrap();
    match Config::from_files(&[file]) {
        Ok(_) => true,
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains(&format!("source[web].{key}")), "{e}");
            false
        }
    }
}

/// Whether `LayerBuilder::build` takes the setting (Cassandra unreachable: build does not
/// wait for it).
fn layer_accepts(set: impl FnOnce(layer::LayerBuilder) -> layer::LayerBuilder) -> bool {
    let config = layer::CassandraConfig {
        contact_points: vec!["127.0.0.1:1".into()],
        ..Default::default()
    };
    let builder = layer::builder()
        .service("limits")
        .cassandra(config)
        .shutdown_timeout(Duration::from_millis(50));
    match set(builder).build::<tracing_subscriber::Registry>() {
        Ok((_layer, guard)) => {
            guard.shutdown();
            true
        }
        Err(layer::LayerError::OutOfRange { .. }) => false,
        Err(e) => panic!("unexpected layer error: {e}"),
    }
}

#[test]
fn ttl_limits_are_the_same_for_the_agent_and_the_layer() {
    let cases = [
        ("1s", true),
        ("30d", true),
        ("630720000s", true), // 20 years: Cassandra's limit
        ("630720001s", false),
        ("7400d", false), // 7400 days: past 20 years
        ("0s", false),
        ("1500ms", false), // CQL TTLs are whole seconds
    ];
    for (ttl, ok) in cases {
        let d = logship::duration::parse(ttl).unwrap();
        assert_eq!(agent_accepts("ttl", ttl), ok, "agent, ttl {ttl}");
        assert_eq!(layer_accepts(|b| b.ttl(d)), ok, "layer, ttl {ttl}");
    }
}

#[test]
fn bucket_limits_are_the_same_for_the_agent_and_the_layer() {
    let cases = [
        ("1s", false),
        ("59s", false),
        ("1m", true),
        ("15m", true),
        ("90500ms", false),
        ("1d", true),
        ("86401s", false), // wider than the day it is counted in: refused, not clamped
        ("2d", false),
    ];
    for (bucket, ok) in cases {
        let d = logship::duration::parse(bucket).unwrap();
        assert_eq!(
            agent_accepts("bucket", bucket),
            ok,
            "agent, bucket {bucket}"
        );
        assert_eq!(layer_accepts(|b| b.bucket(d)), ok, "layer, bucket {bucket}");
    }
}
