//! docs/config.md lists exactly the keys the config types accept, its example is a valid
//! config, and so is the packaged default config.

use std::collections::BTreeSet;
use std::path::Path;

use logship::config::{
    AgentConfig, BatchConfig, BufferConfig, Config, ConfigFile, MetricsConfig, SourceConfig,
};
use logship::sink::{CassandraConfig, RetryConfig, TlsConfig};
use logship::tail::TailConfig;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The field names a struct's `Deserialize` asks for: serde hands them to
/// `deserialize_struct`, which is all this deserializer answers.
fn fields_of<T: for<'de> Deserialize<'de>>() -> BTreeSet<String> {
    struct Grab<'a>(&'a mut Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for Grab<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields = Vec::new();
    let _ = T::deserialize(Grab(&mut fields));
    assert!(
        !fields.is_empty(),
        "{} is not a struct",
        std::any::type_name::<T>()
    );
    fields.into_iter().map(str::to_owned).collect()
}

/// The keys of each `## [section]` table of docs/config.md.
fn documented() -> Vec<(String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/config.md")).unwrap();
    let mut sections: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## [") {
            let name = h.trim_start_matches('[').trim_end_matches(']').to_owned();
            sections.push((name, BTreeSet::new()));
        } else if let Some(row) = line.strip_prefix("| `") {
            let key = row.split('`').next().unwrap().to_owned();
            sections
                .last_mut()
                .expect("a key row before any section")
                .1
                .insert(key);
        }
    }
    sections
}

fn section(name: &str) -> BTreeSet<String> {
    documented()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("docs/config.md has no section [{name}]"))
        .1
}

#[test]
fn every_section_lists_exactly_the_keys_of_its_type() {
    let cases: [(&str, BTreeSet<String>); 11] = [
        ("agent", fields_of::<AgentConfig>()),
        ("cassandra", fields_of::<CassandraConfig>()),
        ("cassandra.tls", fields_of::<TlsConfig>()),
        ("cassandra.retry", fields_of::<RetryConfig>()),
        ("buffer", fields_of::<BufferConfig>()),
        ("batch", fields_of::<BatchConfig>()),
        ("metrics", fields_of::<MetricsConfig>()),
        ("serve", fields_of::<logship::serve::ServeConfig>()),
        ("tail", fields_of::<TailConfig>()),
        ("source", fields_of::<SourceConfig>()),
        (
            "top",
            fields_of::<logship::config::RawConfig>()
                .into_iter()
                .map(|k| if k == "source" { "source".into() } else { k })
                .collect(),
        ),
    ];
    let docs: BTreeSet<String> = documented().into_iter().map(|(n, _)| n).collect();
    for (name, code) in cases {
        if name == "top" {
            // Every top-level table of the config has its own section.
            for key in code {
                assert!(
                    docs.contains(&key),
                    "docs/config.md has no section for [{key}]"
                );
            }
            continue;
        }
        assert_eq!(
            section(name),
            code,
            "docs/config.md [{name}] is out of step with the code"
        );
    }
}

#[test]
fn the_documented_example_is_a_valid_config() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/config.md")).unwrap();
    let example = text
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/config.md has a ```toml example");
    let file = ConfigFile::from_text(Path::new("docs/config.md"), example, |_| None).unwrap();
    let config = Config::from_files(&[file]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sources.len(), 4);
    assert_eq!(config.host, "web-1");
    // Each documented key took: spot-check values that differ from the defaults.
    assert_eq!(config.cassandra.local_datacenter.as_deref(), Some("dc1"));
    assert_eq!(
        config.sources[0].route.ttl,
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    assert_eq!(
        config.sources[3].multiline_timeout,
        std::time::Duration::from_secs(2)
    );
}

#[test]
fn the_packaged_default_config_is_valid() {
    let path = Path::new(ROOT).join("packaging/logship.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.agent.data_dir, Path::new("/var/lib/logship"));
    assert_eq!(config.batch.max_records, 1000);
    assert!(
        config.sources.is_empty(),
        "the package ships its sources commented out"
    );
    // Uncommenting the examples gives a valid config too: that is what operators do.
    let text = std::fs::read_to_string(&path).unwrap();
    let examples_at = text
        .find("# [[source]]")
        .expect("the default config shows [[source]] examples");
    let examples: String = text[examples_at..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect::<Vec<_>>()
        .join("\n");
    let uncommented = format!("{}{}", &text[..examples_at], examples);
    let file = ConfigFile::from_text(&path, &uncommented, |_| None).unwrap();
    let config = Config::from_files(&[file]).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.sources.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["nginx", "nginx-error", "syslog", "postgres"]);
}
