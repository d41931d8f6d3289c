//! Realistic sample logs for each format, generated from a fixed seed so runs compare.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use logship_parsers::Format;

/// A small deterministic generator (SplitMix64): the benchmark needs no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A clock that advances a little per line, as on a busy server where many lines share
/// a second; formats its current second only when it changes.
struct Clock {
    now: Timestamp,
    tz: TimeZone,
}

impl Clock {
    fn new(tz: TimeZone) -> Clock {
        Clock {
            now: "2024-03-09T22:00:00Z".parse().unwrap(),
            tz,
        }
    }

    fn tick(&mut self, rng: &mut Rng) {
        let micros = rng.below(40_000) as i64;
        self.now += jiff::SignedDuration::from_micros(micros);
    }

    fn format(&self, pattern: &str) -> String {
        self.now
            .to_zoned(self.tz.clone())
            .strftime(pattern)
            .to_string()
    }
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "Prometheus/2.50.1",
    "python-requests/2.31.0",
    "-",
];

const WORDS: &[&str] = &[
    "shoes", "winter", "jacket", "red", "sale", "kids", "running", "leather", "bag", "gift",
];

fn ipv4(rng: &mut Rng) -> String {
    // A pool of clients, some much busier than others.
    let client = rng.below(5000).min(rng.below(5000));
    format!(
        "{}.{}.{}.{}",
        11 + client % 200,
        (client * 7) % 256,
        (client * 13) % 256,
        1 + client % 254
    )
}

fn request_path(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "/".to_owned(),
        1 => "/favicon.ico".to_owned(),
        2 => format!("/static/js/app.{:08x}.js", rng.below(1 << 32)),
        3 => format!("/static/img/p{}.webp", rng.below(10_000)),
        4 => format!(
            "/search?q={}+{}&page={}",
            rng.pick(WORDS),
            rng.pick(WORDS),
            1 + rng.below(9)
        ),
        5 => format!("/products/{}?ref=home", rng.below(100_000)),
        6 => format!("/api/v1/users/{}/orders", rng.below(1_000_000)),
        7 => "/api/v1/cart".to_owned(),
        8 => format!("/blog/{}-{}", rng.pick(WORDS), rng.pick(WORDS)),
        _ => "/healthz".to_owned(),
    }
}

fn status(rng: &mut Rng) -> u16 {
    match rng.below(100) {
        0..=79 => 200,
        80..=85 => 304,
        86..=88 => 301,
        89..=94 => 404,
        95 => 403,
        96 => 499,
        97 => 502,
        _ => 500,
    }
}

fn nginx_combined(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::fixed(jiff::tz::offset(1)));
    let mut out = String::with_capacity(lines * 220);
    let mut time = String::new();
    let mut second = -1;
    for _ in 0..lines {
        clock.tick(rng);
        if clock.now.as_second() != second {
            second = clock.now.as_second();
            time = clock.format("%d/%b/%Y:%H:%M:%S %z");
        }
        let method = if rng.chance(85) {
            "GET"
        } else {
            *rng.pick(&["POST", "PUT", "HEAD", "DELETE"])
        };
        let status = status(rng);
        let bytes = if status == 304 { 0 } else { rng.below(200_000) };
        let user = if rng.chance(95) {
            "-"
        } else {
            *rng.pick(&["alice", "bob", "deploy"])
        };
        let referer = if rng.chance(60) {
            "-".to_owned()
        } else {
            format!("https://shop.example.com{}", request_path(rng))
        };
        let protocol = if rng.chance(70) {
            "HTTP/1.1"
        } else {
            "HTTP/2.0"
        };
        let client = if rng.chance(5) {
            format!("2001:db8:{:x}::{:x}", rng.below(65536), rng.below(65536))
        } else {
            ipv4(rng)
        };
        let _ = writeln!(
            out,
            r#"{client} - {user} [{time}] "{method} {} {protocol}" {status} {bytes} "{referer}" "{}""#,
            request_path(rng),
            rng.pick(USER_AGENTS),
        );
    }
    out
}

fn nginx_error(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 250);
    let mut written = 0;
    let mut connection = 100_000u64;
    while written < lines {
        clock.tick(rng);
        clock.tick(rng);
        let time = clock.format("%Y/%m/%d %H:%M:%S");
        let pid = 2000 + rng.below(4);
        connection += 1 + rng.below(50);
        let client = ipv4(rng);
        let path = request_path(rng);
        let pairs = format!(
            r#", client: {client}, server: shop.example.com, request: "GET {path} HTTP/1.1", host: "shop.example.com""#
        );
        let _ = match rng.below(100) {
            0..=49 => writeln!(
                out,
                r#"{time} [error] {pid}#{pid}: *{connection} open() "/var/www/shop{path}" failed (2: No such file or directory){pairs}, referrer: "https://shop.example.com/""#
            ),
            50..=69 => writeln!(
                out,
                r#"{time} [warn] {pid}#{pid}: *{connection} an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{}/00/00000{} while reading upstream{pairs}, upstream: "http://127.0.0.1:8080{path}""#,
                rng.below(10),
                rng.below(100_000)
            ),
            70..=84 => writeln!(
                out,
                r#"{time} [error] {pid}#{pid}: *{connection} upstream timed out (110: Connection timed out) while reading response header from upstream{pairs}, upstream: "http://10.0.1.7:8080{path}""#
            ),
            85..=94 => writeln!(out, "{time} [notice] {pid}#{pid}: signal process started"),
            95..=97 => writeln!(
                out,
                "{time} [crit] {pid}#{pid}: *{connection} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: {client}, server: 0.0.0.0:443"
            ),
            _ => {
                written += 2;
                writeln!(
                    out,
                    "{time} [error] {pid}#{pid}: *{connection} FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined array key \"id\" in /var/www/shop/index.php on line {}\nPHP message: PHP Warning:  foreach() argument must be of type array|object in /var/www/shop/cart.php on line 88\nPHP message: PHP Deprecated:  strlen(): Passing null is deprecated\" while reading response header from upstream{pairs}, upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\"",
                    rng.below(500)
                )
            }
        };
        written += 1;
    }
    out
}

fn syslog(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 150);
    for _ in 0..lines {
        clock.tick(rng);
        clock.tick(rng);
        let time = clock.format("%b %e %H:%M:%S");
        let host = rng.pick(&["web-01", "web-02", "db-01"]);
        let pid = 1000 + rng.below(60_000);
        let ip = ipv4(rng);
        let _ = match rng.below(10) {
            0..=2 => writeln!(
                out,
                "{time} {host} sshd[{pid}]: Accepted publickey for deploy from {ip} port {} ssh2: ED25519 SHA256:3vPp1YcsBWSb0h7X0cFzVwQ2Rz8vF2Yk6bKXy3hG9sE",
                1024 + rng.below(60_000)
            ),
            3 => writeln!(
                out,
                "{time} {host} sshd[{pid}]: Failed password for invalid user admin from {ip} port {} ssh2",
                1024 + rng.below(60_000)
            ),
            4..=5 => writeln!(
                out,
                "{time} {host} CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"
            ),
            6 => writeln!(
                out,
                "{time} {host} kernel: [{}.{:06}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC={ip} DST=10.0.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT={} DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0",
                rng.below(1_000_000),
                rng.below(1_000_000),
                rng.below(65536)
            ),
            7 => writeln!(
                out,
                "{time} {host} systemd[1]: Started session-{}.scope - Session {} of User deploy.",
                rng.below(10_000),
                rng.below(10_000)
            ),
            8 => writeln!(
                out,
                "{time} {host} sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl reload nginx"
            ),
            _ => writeln!(
                out,
                "{time} {host} postfix/smtpd[{pid}]: connect from unknown[{ip}]"
            ),
        };
    }
    out
}

const QUERIES: &[&str] = &[
    "SELECT id, name, price FROM products WHERE id = $1",
    "UPDATE carts SET updated_at = now() WHERE user_id = $1",
    "INSERT INTO orders (user_id, total) VALUES ($1, $2) RETURNING id",
    "SELECT count(*) FROM order_items WHERE order_id = $1",
];

/// Debian's default `log_line_prefix`, which the PostgreSQL sample uses.
pub(crate) const POSTGRES_PREFIX: &str = "%m [%p] %q%u@%d ";

/// Lines written with [`POSTGRES_PREFIX`].
fn postgres(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 150);
    let mut written = 0;
    while written < lines {
        clock.tick(rng);
        let time = clock.format("%Y-%m-%d %H:%M:%S%.3f UTC");
        let pid = 10_000 + rng.below(500);
        let who = format!(
            "{}@{}",
            rng.pick(&["app", "report", "postgres"]),
            rng.pick(&["shop", "analytics"])
        );
        let _ = match rng.below(20) {
            0..=11 => writeln!(
                out,
                "{time} [{pid}] {who} LOG:  duration: {}.{:03} ms  execute <unnamed>: {}",
                rng.below(50),
                rng.below(1000),
                rng.pick(QUERIES)
            ),
            12..=13 => writeln!(
                out,
                "{time} [{pid}] LOG:  checkpoint complete: wrote {} buffers (0.1%); 0 WAL file(s) added, 0 removed, 1 recycled; write=0.101 s, sync=0.002 s, total=0.120 s",
                rng.below(5000)
            ),
            14..=15 => {
                written += 2;
                writeln!(
                    out,
                    "{time} [{pid}] {who} ERROR:  duplicate key value violates unique constraint \"users_email_key\"\n{time} [{pid}] {who} DETAIL:  Key (email)=(user{}@example.com) already exists.\n{time} [{pid}] {who} STATEMENT:  INSERT INTO users (email) VALUES ($1)",
                    rng.below(100_000)
                )
            }
            16 => {
                written += 1;
                writeln!(
                    out,
                    "{time} [{pid}] {who} ERROR:  relation \"order_itemz\" does not exist at character 22\n{time} [{pid}] {who} STATEMENT:  SELECT count(*) FROM order_itemz"
                )
            }
            17 => {
                written += 2;
                writeln!(
                    out,
                    "{time} [{pid}] {who} LOG:  statement: SELECT o.id, sum(i.price)\n\tFROM orders o JOIN order_items i ON i.order_id = o.id\n\tGROUP BY o.id"
                )
            }
            18 => writeln!(
                out,
                "{time} [{pid}] {who} WARNING:  there is no transaction in progress"
            ),
            _ => writeln!(
                out,
                "{time} [{pid}] {who} FATAL:  password authentication failed for user \"report\""
            ),
        };
        written += 1;
    }
    out
}

/// PostgreSQL 13 csvlog (24 columns).
fn postgres_csv(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 260);
    let mut written = 0;
    let mut line_num = 0;
    while written < lines {
        clock.tick(rng);
        line_num += 1;
        let time = clock.format("%Y-%m-%d %H:%M:%S%.3f UTC");
        let pid = 10_000 + rng.below(500);
        let (severity, state, message) = match rng.below(10) {
            0..=6 => (
                "LOG",
                "00000",
                format!(
                    "duration: {}.{:03} ms  statement: {}",
                    rng.below(50),
                    rng.below(1000),
                    rng.pick(QUERIES)
                ),
            ),
            7 => (
                "ERROR",
                "42P01",
                "relation \"\"order_itemz\"\" does not exist".to_owned(),
            ),
            8 => {
                written += 1;
                (
                    "LOG",
                    "00000",
                    "statement: SELECT o.id\n  FROM orders o".to_owned(),
                )
            }
            _ => (
                "FATAL",
                "25P03",
                "terminating connection due to idle-in-transaction timeout".to_owned(),
            ),
        };
        let _ = writeln!(
            out,
            r#"{time},"app","shop",{pid},"10.0.0.{}:{}",65f0a1b2.{pid:x},{line_num},"idle",2024-03-09 21:00:00 UTC,3/{line_num},0,{severity},{state},"{message}",,,,,,,,,"shop-api","client backend""#,
            rng.below(255),
            1024 + rng.below(60_000)
        );
        written += 1;
    }
    out
}

/// PostgreSQL 15+ jsonlog.
fn postgres_json(lines: usize, rng: &mut Rng) -> String {
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 400);
    for line_num in 0..lines {
        clock.tick(rng);
        let time = clock.format("%Y-%m-%d %H:%M:%S%.3f UTC");
        let pid = 10_000 + rng.below(500);
        let (severity, message) = if rng.chance(90) {
            (
                "LOG",
                format!(
                    "duration: {}.{:03} ms  statement: {}",
                    rng.below(50),
                    rng.below(1000),
                    rng.pick(QUERIES)
                ),
            )
        } else {
            (
                "ERROR",
                "relation \\\"order_itemz\\\" does not exist".to_owned(),
            )
        };
        let _ = writeln!(
            out,
            r#"{{"timestamp":"{time}","user":"app","dbname":"shop","pid":{pid},"remote_host":"10.0.0.{}","remote_port":{},"session_id":"65f0a1b2.{pid:x}","line_num":{line_num},"ps":"SELECT","session_start":"2024-03-09 21:00:00 UTC","vxid":"3/{line_num}","txid":0,"error_severity":"{severity}","message":"{message}","application_name":"shop-api","backend_type":"client backend","query_id":{}}}"#,
            rng.below(255),
            1024 + rng.below(60_000),
            rng.next() >> 1
        );
    }
    out
}

/// RFC 5424 lines as a relay writes them to a file: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID
/// SD MSG`, with no structured data, one element, or two (one with an escaped quote).
/// The `syslog` format reads both forms; its default sample is RFC 3164.
#[allow(dead_code)] // used by the vrl_peer benchmark
pub(crate) fn syslog_rfc5424(lines: usize) -> String {
    let mut rng = Rng(0x5EED ^ 5424);
    let mut clock = Clock::new(TimeZone::UTC);
    let mut out = String::with_capacity(lines * 200);
    for _ in 0..lines {
        clock.tick(&mut rng);
        let time = clock.format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let host = rng.pick(&[
            "web-01.example.com",
            "web-02.example.com",
            "db-01.example.com",
        ]);
        let (app, msgid) = *rng.pick(&[
            ("shop-api", "REQ"),
            ("payments", "TXN"),
            ("worker", "-"),
            ("nginx", "ACCESS"),
        ]);
        let pri = 8 * rng.pick(&[1u64, 3, 16, 20]) + rng.pick(&[3u64, 4, 6, 6, 6, 7]);
        let pid = 1000 + rng.below(60_000);
        let ip = ipv4(&mut rng);
        let sd = match rng.below(10) {
            0..=3 => "-".to_owned(),
            4..=7 => format!(
                r#"[request@32473 id="{:016x}" client="{ip}" route="/api/v1/items/{}"]"#,
                rng.next(),
                rng.below(10_000)
            ),
            8 => format!(
                r#"[timeQuality tzKnown="1" isSynced="1" syncAccuracy="{}"][origin ip="{ip}" software="rsyslogd" swVersion="8.2302.0"]"#,
                rng.below(100_000)
            ),
            _ => format!(
                r#"[request@32473 id="{:016x}" note="said \"hi\" twice" path="C:\\tmp\]"]"#,
                rng.next()
            ),
        };
        let words = rng.below(8) as usize + 3;
        let mut message = String::from("processed");
        for _ in 0..words {
            message.push(' ');
            let word: &&str = rng.pick(WORDS);
            message.push_str(word);
        }
        let _ = writeln!(
            out,
            "<{pri}>1 {time} {host} {app} {pid} {msgid} {sd} {message} in {} ms",
            rng.below(2000)
        );
    }
    out
}

/// About `lines` lines of `format`, as a file's content.
pub(crate) fn generate(format: Format, lines: usize) -> String {
    let mut rng = Rng(0x5EED ^ format.name().len() as u64);
    match format {
        Format::Nginx => nginx_combined(lines, &mut rng),
        Format::NginxError => nginx_error(lines, &mut rng),
        Format::Syslog => syslog(lines, &mut rng),
        Format::Postgres => postgres(lines, &mut rng),
        Format::PostgresCsv => postgres_csv(lines, &mut rng),
        Format::PostgresJson => postgres_json(lines, &mut rng),
    }
}
