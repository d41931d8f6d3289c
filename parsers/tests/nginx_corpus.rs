//! The nginx parsers on the real logs in the shared corpus (see its README for each file's
//! variant). Every line must parse with the log_format that wrote it, and a line the
//! format does not describe must be a parse error, never a record with shifted fields.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use logship_parsers::nginx::{AccessParser, COMBINED};
use logship_parsers::nginx_error::ErrorParser;
use logship_parsers::{Assembler, Parser, Record, RecordContext};
use serde_json::Value;

const VHOST_COMBINED: &str = r#"$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// A proxy setup that logs the forwarded-for list where `combined` has `$remote_addr`:
/// beats' test.log mixes such lines with plain `combined` ones.
const FORWARDED_COMBINED: &str = r#"$http_x_forwarded_for - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// `test-with-host.log`: a vhost in front of what `FORWARDED_COMBINED` describes.
const VHOST_FORWARDED: &str = r#"$host $http_x_forwarded_for - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
const JIRA_VHOST: &str = r#"$host:$server_port $remote_addr $request_id $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time_us"#;

/// The corpus file, or `None` (after a notice) when the corpus is absent outside CI.
fn corpus(relative: &str) -> Option<PathBuf> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    let path = root.join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus file {} missing (CI=true)",
        path.display()
    );
    eprintln!(
        "notice: corpus file {} missing, test skipped",
        path.display()
    );
    None
}

/// Lines of a file, without their newline. Empty lines are left out: they are not log
/// lines (beats' test.log ends with one), and a parser rightly reports them as errors.
fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn read_time() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

/// Records for every entry of the file, assembled as the tailer does.
fn records(parser: &dyn Parser, path: &Path) -> Vec<Record> {
    let ctx = RecordContext::new("nginx", "test-host");
    let mut assembler = Assembler::new(1 << 20);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    for line in lines(path) {
        let end = offset + line.len() as u64 + 1;
        entries.extend(assembler.push(parser, &line, offset, end));
        offset = end;
    }
    entries.extend(assembler.flush());
    entries
        .iter()
        .map(|e| parser.record(&e.bytes, &ctx, read_time()))
        .collect()
}

fn assert_no_parse_errors(file: &str, records: &[Record]) {
    let errors: Vec<_> = records
        .iter()
        .filter_map(|r| r.parse_error.as_ref().map(|e| (e, r.message())))
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}");
}

fn field<'r>(record: &'r Record, key: &str) -> Option<&'r str> {
    record.field(key)
}

/// Each file with the log_format that wrote its lines, the entry count, and which entries
/// that format does not describe: access.log ends with 2 vhost lines (`$host` in front of
/// `combined`), test.log has 5 lines with a forwarded-for list before the address.
#[test]
fn every_access_log_parses_with_its_log_format() {
    let files: [(&str, &str, usize, &[usize]); 10] = [
        ("nginx-access/beats/access.log", COMBINED, 14, &[12, 13]),
        (
            "nginx-access/beats/access.log",
            VHOST_COMBINED,
            14,
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ),
        (
            "nginx-access/beats/test.log",
            COMBINED,
            10,
            &[0, 2, 4, 5, 9],
        ),
        ("nginx-access/beats/test.log", FORWARDED_COMBINED, 10, &[]),
        // Forwarded-for lists where `$remote_addr` stands are not one address: those lines
        // (0, 2, 4, 5, 9) are errors with the vhost format, as in test.log with combined,
        // and all parse when the format says the field is the forwarded list.
        (
            "nginx-access/beats/test-with-host.log",
            VHOST_COMBINED,
            10,
            &[0, 2, 4, 5, 9],
        ),
        (
            "nginx-access/beats/test-with-host.log",
            VHOST_FORWARDED,
            10,
            &[],
        ),
        (
            "nginx-access/beats/test-with-host.log",
            COMBINED,
            10,
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        ),
        ("nginx-access/lnav/logfile_access_log.0", COMBINED, 3, &[]),
        ("nginx-access/lnav/logfile_access_log.1", COMBINED, 1, &[]),
        (
            "nginx-access/lnav/logfile_regexp_access_log.0",
            JIRA_VHOST,
            2,
            &[],
        ),
    ];
    for (file, format, count, not_described) in files {
        let Some(path) = corpus(file) else { continue };
        let parser = AccessParser::new(format).unwrap();
        let records = records(&parser, &path);
        assert_eq!(records.len(), count, "{file}");
        let lines = lines(&path);
        let errors: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].parse_error.is_some())
            .collect();
        assert_eq!(errors, not_described, "{file} with {format}: {records:#?}");
        for &i in not_described {
            // Nothing is lost: the line is the message, no field is made up.
            let record = &records[i];
            assert_eq!(record.message().as_bytes(), lines[i], "{file}");
            assert!(record.fields().len() == 0, "{file}: {record:?}");
        }
        let described: Vec<&Record> = records.iter().filter(|r| r.parse_error.is_none()).collect();
        for record in described {
            assert_ne!(
                record.timestamp,
                read_time(),
                "{file}: {}",
                record.message()
            );
            assert!(
                field(record, "status").is_some(),
                "{file}: {}",
                record.message()
            );
        }
    }
}

#[test]
fn access_log_vhost_lines_and_multibyte_paths() {
    let Some(path) = corpus("nginx-access/beats/access.log") else {
        return;
    };
    let lines = lines(&path);
    let vhost = AccessParser::new(VHOST_COMBINED).unwrap();
    let ctx = RecordContext::new("nginx", "h");
    let last = vhost.record(&lines[13], &ctx, read_time());
    assert_eq!(last.parse_error, None);
    assert_eq!(field(&last, "host"), Some("lessons.example.com"));
    assert_eq!(field(&last, "remote_addr"), Some("192.168.0.1"));
    assert_eq!(field(&last, "status"), Some("206"));
    assert!(field(&last, "path").unwrap().starts_with("/%D0%A0%D1%83"));
    assert_eq!(last.timestamp, "2020-06-09T19:15:39Z".parse().unwrap());

    let combined = AccessParser::new(COMBINED).unwrap();
    let shifted = combined.record(&lines[13], &ctx, read_time());
    assert_eq!(
        shifted.parse_error.as_deref(),
        Some(
            "$remote_addr has a space in it: \"lessons.example.com 192.168.0.1\"; the log_format \
             does not describe this line (text in front of the format, such as a $host?)"
        )
    );
    let first = combined.record(&lines[1], &ctx, read_time());
    assert_eq!(
        field(&first, "http_referer"),
        Some("http://localhost:8080/")
    );
    assert_eq!(first.level, logship_parsers::Level::Warn);
}

#[test]
fn jira_vhost_lines_have_host_port_and_duration() {
    let Some(path) = corpus("nginx-access/lnav/logfile_regexp_access_log.0") else {
        return;
    };
    let records = records(&AccessParser::new(JIRA_VHOST).unwrap(), &path);
    let r = &records[1];
    assert_eq!(field(r, "host"), Some("localhost"));
    assert_eq!(field(r, "server_port"), Some("443"));
    assert_eq!(field(r, "remote_user"), Some("khenry"));
    assert_eq!(field(r, "request_time_us"), Some("156302"));
    assert_eq!(field(r, "protocol"), Some("HTTP/2.0"));
}

/// Filebeat's expected output for test.log: client address, method, url, status, bytes,
/// user agent, referrer, time. The file mixes `combined` lines with lines that carry a
/// forwarded-for list where the address goes, so it is read with `FORWARDED_COMBINED`
/// (with `combined` those lines are parse errors, see above). Filebeat picks one
/// `source.address` out of a client list; we keep the list whole, so the check is that it
/// holds the same addresses.
#[test]
fn test_log_agrees_with_filebeat_expected_output() {
    let (Some(path), Some(expected)) = (
        corpus("nginx-access/beats/test.log"),
        corpus("nginx-access/beats/test.log-expected.json"),
    ) else {
        return;
    };
    let records = records(&AccessParser::new(FORWARDED_COMBINED).unwrap(), &path);
    let expected: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(expected).unwrap()).unwrap();
    assert_eq!(records.len(), expected.len());
    for (record, want) in records.iter().zip(&expected) {
        let line = record.message();
        assert_eq!(
            record.timestamp.to_string(),
            want["@timestamp"].as_str().unwrap().replace(".000Z", "Z"),
            "{line}"
        );

        let clients = field(record, "http_x_forwarded_for").unwrap();
        let ours: std::collections::BTreeSet<&str> = clients
            .split([',', ' ', '"'])
            .filter(|s| !s.is_empty())
            .collect();
        assert!(
            ours.contains(want["source.address"].as_str().unwrap()),
            "{line}"
        );
        if let Some(list) = want["nginx.access.remote_ip_list"].as_array() {
            let theirs: std::collections::BTreeSet<&str> =
                list.iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(ours, theirs, "{line}");
        }

        let str_of = |key: &str| want[key].as_str();
        assert_eq!(
            field(record, "method"),
            str_of("http.request.method"),
            "{line}"
        );
        assert_eq!(field(record, "path"), str_of("url.original"), "{line}");
        assert_eq!(
            field(record, "protocol").map(|p| p.trim_start_matches("HTTP/")),
            str_of("http.version"),
            "{line}"
        );
        assert_eq!(
            field(record, "http_user_agent"),
            str_of("user_agent.original"),
            "{line}"
        );
        assert_eq!(
            field(record, "http_referer"),
            str_of("http.request.referrer"),
            "{line}"
        );
        assert_eq!(
            field(record, "status").map(|s| s.parse::<u64>().unwrap()),
            want["http.response.status_code"].as_u64(),
            "{line}"
        );
        assert_eq!(
            field(record, "body_bytes_sent").map(|s| s.parse::<u64>().unwrap()),
            want["http.response.body.bytes"].as_u64(),
            "{line}"
        );
    }
}

#[test]
fn error_log_parses_and_joins_fastcgi_continuations() {
    let Some(path) = corpus("nginx-error/beats/error.log") else {
        return;
    };
    let records = records(&ErrorParser::new(TimeZone::UTC), &path);
    assert_no_parse_errors("nginx-error/beats/error.log", &records);
    // 6 lines: the FastCGI entry spans 3 of them.
    assert_eq!(records.len(), 4);
    let fastcgi = &records[2];
    assert_eq!(fastcgi.message().lines().count(), 3);
    assert!(
        fastcgi
            .message()
            .starts_with("FastCGI sent in stderr: \"PHP message:")
    );
    assert!(fastcgi.message().ends_with("post.php on line 0"));
    assert_eq!(field(fastcgi, "pid"), Some("205860"));
    assert_eq!(field(fastcgi, "tid"), Some("205860"));
    assert_eq!(field(fastcgi, "connection"), Some("180289"));
    assert_eq!(field(&records[3], "request"), Some("GET /pysio HTTP/1.1"));
    assert_eq!(field(&records[3], "host"), Some("localhost:8080"));
}

/// Filebeat keeps the trailing pairs in its message; we move them to fields, so the
/// message must be Filebeat's up to where the pairs begin, and the pairs must be ours.
#[test]
fn error_log_agrees_with_filebeat_expected_output() {
    let (Some(path), Some(expected)) = (
        corpus("nginx-error/beats/error.log"),
        corpus("nginx-error/beats/error.log-expected.json"),
    ) else {
        return;
    };
    // Filebeat's test ran in UTC.
    let records = records(&ErrorParser::new(TimeZone::UTC), &path);
    let expected: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(expected).unwrap()).unwrap();
    assert_eq!(
        expected.len(),
        2,
        "the expected file covers the first 2 entries"
    );
    for (record, want) in records.iter().zip(&expected) {
        assert_eq!(
            record.timestamp.to_string(),
            want["@timestamp"].as_str().unwrap().replace(".000Z", "Z")
        );
        assert_eq!(
            record.level.as_str().to_lowercase(),
            want["log.level"].as_str().unwrap()
        );
        let theirs = want["message"].as_str().unwrap();
        let (message, pairs) = theirs.split_once(", client: ").unwrap();
        assert_eq!(record.message(), message);
        let client = pairs.split(", ").next().unwrap();
        assert_eq!(field(record, "client"), Some(client));
        assert_eq!(field(record, "server"), Some("localhost"));
        assert_eq!(field(record, "host"), Some("localhost:8080"));
        assert!(theirs.contains(&format!(
            "request: \"{}\"",
            field(record, "request").unwrap()
        )));
        assert_eq!(
            field(record, "pid").map(|s| s.parse::<u64>().unwrap()),
            want["process.pid"].as_u64()
        );
        assert_eq!(
            field(record, "tid").map(|s| s.parse::<u64>().unwrap()),
            want["process.thread.id"].as_u64()
        );
        assert_eq!(
            field(record, "connection").map(|s| s.parse::<u64>().unwrap()),
            want["nginx.error.connection_id"].as_u64()
        );
    }
    assert_eq!(
        field(&records[0], "referrer"),
        Some("http://localhost:8080/")
    );
}
