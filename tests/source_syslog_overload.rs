//! Syslog sources under overload, with the real agent and Cassandra behind a test proxy that
//! refuses connections: while the buffer is full, TCP stops reading (back-pressure) and
//! loses nothing it accepted; UDP drops what finds the buffer full and counts it.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use agent::{Db, WAIT, Workspace, free_port, wait_until};
use proxy::{Mode, Proxy};

const CAPACITY: usize = 200;
const TCP_MESSAGES: usize = 3000;
const UDP_MESSAGES: usize = 500;

#[test]
fn a_full_buffer_holds_tcp_back_without_loss_and_drops_and_counts_udp() {
    let Some(db) = Db::new("syslog_full") else {
        return;
    };
    let proxy = Proxy::start(&db.node.contact_point(), Mode::Pass);
    let ws = Workspace::new("syslog-agent");
    let udp_port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free udp port");
    let tcp_port = free_port();
    let text = format!(
        "{}{}request_timeout = \"2s\"\nconnect_timeout = \"3s\"\n\n[cassandra.retry]\n\
         initial_backoff = \"50ms\"\nmax_backoff = \"1s\"\nbreaker_threshold = 3\nbreaker_cooldown = \"1s\"\n\n\
         [buffer]\ncapacity = {CAPACITY}\n\n[batch]\nmax_records = 100\nlinger = \"100ms\"\n\n\
         [[source]]\nname = \"full\"\ntype = \"syslog\"\nudp = \"127.0.0.1:{udp_port}\"\ntcp = \"127.0.0.1:{tcp_port}\"\n",
        ws.agent_toml(),
        db.cassandra_toml_via(&proxy.address()),
    );
    std::fs::write(ws.config(), text).expect("write config");
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();

    proxy.set(Mode::Refuse);
    let sender = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", tcp_port)).expect("connect");
        for k in 0..TCP_MESSAGES {
            writeln!(c, "<13>Nov 30 10:00:00 h1 app: tcp held {k}").expect("send over tcp");
        }
    });
    wait_until(WAIT, "the buffer to fill up", || {
        let depth = agent.metric("logship_buffer_depth{}")?;
        (depth >= CAPACITY as f64).then_some(())
    });
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind the udp sender");
    for k in 0..UDP_MESSAGES {
        let m = format!("<13>Nov 30 10:00:00 h1 app: udp full {k}");
        udp.send_to(m.as_bytes(), ("127.0.0.1", udp_port))
            .expect("send over udp");
        std::thread::sleep(Duration::from_micros(200));
    }
    let udp_series =
        |name: &str| format!("logship_{name}_total{{source=\"full\",transport=\"udp\"}}");
    wait_until(WAIT, "every udp datagram read", || {
        let got = agent.metric(&udp_series("syslog_messages"))?;
        (got >= UDP_MESSAGES as f64).then_some(())
    });
    let dropped = agent.metric(&udp_series("syslog_dropped")).unwrap_or(0.0);
    assert!(
        dropped > 0.0,
        "no udp datagram found the buffer full: the test tested nothing"
    );

    proxy.set(Mode::Pass);
    sender.join().expect("tcp sender");
    let count = |prefix: &str| {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for r in db.rows().into_iter().filter(|r| r.source == "full") {
            if r.message.starts_with(prefix) {
                *seen.entry(r.message).or_default() += 1;
            }
        }
        seen
    };
    let tcp = wait_until(WAIT, "every tcp message as a row", || {
        let seen = count("tcp held ");
        (seen.len() >= TCP_MESSAGES).then_some(seen)
    });
    for k in 0..TCP_MESSAGES {
        assert_eq!(
            tcp.get(&format!("tcp held {k}")),
            Some(&1),
            "tcp message {k}"
        );
    }
    assert_eq!(tcp.len(), TCP_MESSAGES);
    // UDP: at most once; what was not written was dropped and counted.
    std::thread::sleep(Duration::from_secs(2));
    let udp_rows = count("udp full ");
    assert!(
        udp_rows.values().all(|&n| n == 1),
        "a udp message landed twice"
    );
    assert_eq!(
        udp_rows.len() as f64 + dropped,
        UDP_MESSAGES as f64,
        "udp rows + dropped (dropped = {dropped})"
    );
    eprintln!(
        "buffer of {CAPACITY}: {TCP_MESSAGES} tcp messages all written; udp: {} written, {dropped} dropped",
        udp_rows.len()
    );
}
