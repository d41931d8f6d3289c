//! `[[source]] type = "syslog"` end to end: util-linux `logger` sends over UDP, TCP (octet
//! counting and newline framing) and a Unix datagram socket to the real agent, and the rows
//! are read back from Cassandra and counted by content. Bad input over TCP (an over-long
//! frame, garbage, a connection closed mid-frame) becomes records; `max_connections` holds.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use agent::{Agent, Db, WAIT, Workspace, free_port, wait_until};
use support::prereq;
use support::records::InfraRow;

/// Messages per transport and form.
const N: usize = 40;

struct Listeners {
    udp: u16,
    tcp: u16,
    unix: PathBuf,
}

fn start(db: &Db, ws: &Workspace, source: &str, extra_keys: &str) -> (Agent, Listeners) {
    let l = Listeners {
        udp: free_udp_port(),
        tcp: free_port(),
        unix: ws.path().join("syslog.sock"),
    };
    let text = format!(
        "{}{}[batch]\nlinger = \"100ms\"\n\n[[source]]\nname = \"{source}\"\ntype = \"syslog\"\n\
         udp = \"127.0.0.1:{}\"\ntcp = \"127.0.0.1:{}\"\nunix = \"{}\"\ntimezone = \"UTC\"\n{extra_keys}",
        ws.agent_toml(),
        db.cassandra_toml(),
        l.udp,
        l.tcp,
        l.unix.display()
    );
    std::fs::write(ws.config(), text).expect("write config");
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    (agent, l)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral udp port")
}

fn logger() -> Option<PathBuf> {
    prereq::require(prereq::find_tool("logger"))
}

/// Runs `logger ARGS`, one message per stdin line.
fn send(logger: &Path, args: &[&str], messages: &[String]) {
    let mut child = Command::new(logger)
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run logger");
    let mut stdin = child.stdin.take().expect("logger stdin");
    for m in messages {
        writeln!(stdin, "{m}").expect("write to logger");
    }
    drop(stdin);
    let status = child.wait().expect("wait for logger");
    assert!(status.success(), "logger {args:?}: {status}");
}

fn machine_host() -> String {
    let out = Command::new("hostname").output().expect("run hostname");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Rows of `source` whose message starts with `prefix`, keyed by message.
fn rows_by_message(db: &Db, source: &str, prefix: &str) -> BTreeMap<String, Vec<InfraRow>> {
    let mut out: BTreeMap<String, Vec<InfraRow>> = BTreeMap::new();
    for r in db.rows().into_iter().filter(|r| r.source == source) {
        if r.message.starts_with(prefix) {
            out.entry(r.message.clone()).or_default().push(r);
        }
    }
    out
}

/// One way of sending: logger's flags and what the rows must then say.
struct Form {
    name: &'static str,
    args: Vec<String>,
    tag: &'static str,
    level: &'static str,
    facility: &'static str,
    severity: &'static str,
    /// The host the rows must have: the message's host name, or the agent's.
    host: String,
}

#[test]
fn logger_messages_over_udp_tcp_and_unix_land_once_parsed_with_their_host() {
    let Some(logger) = logger() else { return };
    let Some(db) = Db::new("syslog_net") else {
        return;
    };
    let ws = Workspace::new("syslog-agent");
    let (mut agent, l) = start(&db, &ws, "net", "");
    let me = machine_host();
    let udp = |extra: &[&str]| {
        let mut a = vec!["--udp", "--server", "127.0.0.1", "--port"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        a.push(l.udp.to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let tcp = |extra: &[&str]| {
        let mut a = vec!["--tcp", "--server", "127.0.0.1", "--port"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        a.push(l.tcp.to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let unix = |extra: &[&str]| {
        let mut a = vec!["--socket".to_owned(), l.unix.display().to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let forms = [
        Form {
            name: "udp5424",
            args: udp(&["--rfc5424", "-p", "local3.warning"]),
            tag: "app-udp5424",
            level: "WARN",
            facility: "local3",
            severity: "warning",
            host: me.clone(),
        },
        Form {
            name: "udp3164",
            args: udp(&["--rfc3164", "-p", "daemon.err"]),
            tag: "app-udp3164",
            level: "ERROR",
            facility: "daemon",
            severity: "err",
            host: me.clone(),
        },
        Form {
            name: "tcpoctet",
            args: tcp(&["--octet-count", "--rfc5424", "-p", "user.notice"]),
            tag: "app-tcpoctet",
            level: "NOTICE",
            facility: "user",
            severity: "notice",
            host: me.clone(),
        },
        Form {
            name: "tcpline",
            args: tcp(&["--rfc3164", "-p", "mail.info"]),
            tag: "app-tcpline",
            level: "INFO",
            facility: "mail",
            severity: "info",
            host: me.clone(),
        },
        Form {
            // logger's local format names no host: the agent's host is the row's.
            name: "unixlocal",
            args: unix(&["-p", "auth.crit"]),
            tag: "app-unixlocal",
            level: "CRITICAL",
            facility: "auth",
            severity: "crit",
            host: ws.host.clone(),
        },
        Form {
            name: "unix5424",
            args: unix(&["--rfc5424", "-p", "local7.debug"]),
            tag: "app-unix5424",
            level: "DEBUG",
            facility: "local7",
            severity: "debug",
            host: me.clone(),
        },
    ];
    for f in &forms {
        let messages: Vec<String> = (0..N).map(|k| format!("{} message {k}", f.name)).collect();
        let mut args: Vec<&str> = f.args.iter().map(String::as_str).collect();
        args.extend(["--tag", f.tag]);
        send(&logger, &args, &messages);
    }
    for f in &forms {
        let prefix = format!("{} message ", f.name);
        let rows = wait_until(WAIT, &format!("{N} rows of {}", f.name), || {
            let rows = rows_by_message(&db, "net", &prefix);
            (rows.len() >= N).then_some(rows)
        });
        assert_eq!(rows.len(), N, "{}: distinct messages", f.name);
        for k in 0..N {
            let message = format!("{prefix}{k}");
            let got = rows
                .get(&message)
                .unwrap_or_else(|| panic!("{}: {message:?} missing", f.name));
            assert_eq!(
                got.len(),
                1,
                "{}: {message:?} landed {} times",
                f.name,
                got.len()
            );
            let r = &got[0];
            assert_eq!(r.parse_error, None, "{}: {r:?}", f.name);
            assert_eq!(r.level, f.level, "{}: {r:?}", f.name);
            assert_eq!(r.host, f.host, "{}: {r:?}", f.name);
            assert_eq!(
                r.fields.get("appname").map(String::as_str),
                Some(f.tag),
                "{r:?}"
            );
            assert_eq!(
                r.fields.get("facility").map(String::as_str),
                Some(f.facility),
                "{r:?}"
            );
            assert_eq!(
                r.fields.get("severity").map(String::as_str),
                Some(f.severity),
                "{r:?}"
            );
        }
    }
    let metrics = agent.metrics();
    assert_eq!(
        agent::metric_value(
            &metrics,
            "logship_syslog_dropped_total{source=\"net\",transport=\"udp\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(!l.unix.exists(), "the unix socket is removed at stop");
}

#[test]
fn bad_tcp_input_becomes_records_and_the_listener_keeps_serving() {
    let Some(db) = Db::new("syslog_bad") else {
        return;
    };
    let ws = Workspace::new("syslog-agent");
    let (mut agent, l) = start(&db, &ws, "bad", "max_message_bytes = 200\n");
    let connect = || TcpStream::connect(("127.0.0.1", l.tcp)).expect("connect to the tcp listener");

    // An octet-counted frame of 1000 bytes: cut to 200, the rest skipped, then a good one.
    let long = format!("<13>1 - host1 app - - - toolong {}", "x".repeat(2000));
    let long = &long[..1000];
    let mut c = connect();
    write!(c, "1000 {long}").unwrap();
    let good = "<13>1 - host1 app - - - after the long frame";
    write!(c, "{} {good}", good.len()).unwrap();
    // Garbage bytes, newline-framed, then an over-long line, then a good line.
    c.write_all(b"\xff\xfe garbage \x01\x02\n").unwrap();
    writeln!(
        c,
        "<13>Nov 30 10:00:00 host1 app: longline {}",
        "y".repeat(500)
    )
    .unwrap();
    writeln!(c, "<13>Nov 30 10:00:00 host1 app: after the long line").unwrap();
    drop(c);
    // A connection closed in the middle of an octet-counted frame.
    let mut c = connect();
    write!(c, "100 <13>1 - host1 app - - - midframe").unwrap();
    drop(c);

    let rows = wait_until(WAIT, "the 6 records of the bad input", || {
        let rows: Vec<InfraRow> = db
            .rows()
            .into_iter()
            .filter(|r| r.source == "bad")
            .collect();
        (rows.len() >= 6).then_some(rows)
    });
    let find = |needle: &str| -> &InfraRow {
        let found: Vec<&InfraRow> = rows.iter().filter(|r| r.message.contains(needle)).collect();
        assert_eq!(found.len(), 1, "{needle:?} in {rows:#?}");
        found[0]
    };
    let cut = find("toolong");
    assert_eq!(
        cut.fields.get("truncated").map(String::as_str),
        Some("true"),
        "{cut:?}"
    );
    assert!(cut.message.len() < 200, "{cut:?}");
    assert_eq!(cut.host, "host1");
    assert_eq!(find("after the long frame").parse_error, None);
    let garbage = find("garbage");
    assert!(garbage.parse_error.is_some(), "{garbage:?}");
    assert_eq!(
        garbage.host, "127.0.0.1",
        "no host in the message: the peer's address"
    );
    let line = find("longline");
    assert_eq!(
        line.fields.get("truncated").map(String::as_str),
        Some("true"),
        "{line:?}"
    );
    assert_eq!(find("after the long line").parse_error, None);
    let mid = find("midframe");
    assert!(
        mid.parse_error
            .as_deref()
            .is_some_and(|e| e.contains("closed")),
        "{mid:?}"
    );
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert!(agent.is_running(), "{}", agent.stderr());
}

#[test]
fn max_connections_holds_further_connections_until_one_closes() {
    let Some(db) = Db::new("syslog_conn") else {
        return;
    };
    let ws = Workspace::new("syslog-agent");
    let (_agent, l) = start(&db, &ws, "conn", "max_connections = 2\n");
    let connect = || TcpStream::connect(("127.0.0.1", l.tcp)).expect("connect to the tcp listener");
    let line = |n: &str| format!("<13>Nov 30 10:00:00 h1 app: conn {n}\n");
    let rows_of = |n: &str| {
        let want = format!("conn {n}");
        db.rows()
            .into_iter()
            .filter(|r| r.source == "conn" && r.message == want)
            .count()
    };
    let mut first = connect();
    let mut second = connect();
    first.write_all(line("first").as_bytes()).unwrap();
    second.write_all(line("second").as_bytes()).unwrap();
    wait_until(WAIT, "the first two connections' rows", || {
        (rows_of("first") == 1 && rows_of("second") == 1).then_some(())
    });
    // The third connection completes in the kernel's backlog, but is not read.
    let mut third = connect();
    third.write_all(line("third").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rows_of("third"),
        0,
        "a third connection was served with max_connections = 2"
    );
    // The first two are still served; once one closes, the third is.
    first.write_all(line("first again").as_bytes()).unwrap();
    wait_until(WAIT, "the first connection's second row", || {
        (rows_of("first again") == 1).then_some(())
    });
    drop(first);
    wait_until(
        WAIT,
        "the third connection's row once the first closed",
        || (rows_of("third") == 1).then_some(()),
    );
    drop((second, third));
}
