//! A small HTTP service whose handlers log inside request spans, shipping every event to
//! Cassandra with logship's layer while the console still shows them.
//!
//! ```text
//! scripts/cassandra start
//! cargo run --features layer --example app_service -- --requests 20   # serve 20 of its own requests, exit
//! cargo run --features layer --example app_service                    # serve 127.0.0.1:8080 until killed
//! scripts/cassandra cqlsh -e "SELECT ts, level, message, request_id, span_fields
//!     FROM logship.application_logs WHERE request_id = 'req-000003'"
//! ```
//! `LOGSHIP_CASSANDRA=host:port` points it at another node.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use logship::sink::CassandraConfig;
use tracing::{debug, error, info, info_span, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut requests: Option<usize> = None;
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                requests = Some(args.next().ok_or("--requests needs a number")?.parse()?)
            }
            "--listen" => addr = args.next().ok_or("--listen needs an address")?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if requests.is_some() {
        addr.set_port(0);
    }

    // The few lines an app adds (see docs/layer.md).
    let cassandra = CassandraConfig {
        contact_points: vec![
            std::env::var("LOGSHIP_CASSANDRA").unwrap_or_else(|_| "127.0.0.1".into()),
        ],
        ..CassandraConfig::default()
    };
    let (logship, guard) = logship::layer::builder()
        .service("app-service")
        .cassandra(cassandra)
        .ttl(Duration::from_secs(7 * 86_400))
        .apply_schema(true) // a dev node; in production the operator runs `logship schema apply`
        .build()?;
    tracing_subscriber::registry()
        .with(logship)
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .init();

    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    info!(%local, "listening");
    let client = requests.map(|n| std::thread::spawn(move || drive(local, n)));
    for (n, stream) in listener.incoming().enumerate() {
        match stream {
            Ok(stream) => serve(stream, n),
            Err(e) => error!(error = %e, "accept failed"),
        }
        if requests.is_some_and(|total| n + 1 >= total) {
            break;
        }
    }
    if let Some(client) = client {
        client.join().map_err(|_| "client thread panicked")??;
    }
    info!("shutting down");
    let report = guard.shutdown();
    println!("{report}");
    Ok(())
}

/// One connection, one request, inside a span that carries its id: every event the
/// handlers log gets `request_id` and the method and path.
fn serve(stream: TcpStream, n: usize) {
    let started = Instant::now();
    let request_id = format!("req-{n:06}");
    let span = info_span!(
        "request",
        request_id = %request_id,
        method = tracing::field::Empty,
        path = tracing::field::Empty
    );
    let _enter = span.enter();
    let (status, body) = match read_request_line(&stream) {
        Ok((method, path)) => {
            span.record("method", method.as_str());
            span.record("path", path.as_str());
            route(&method, &path)
        }
        Err(e) => {
            warn!(error = %e, "unreadable request");
            (400, "bad request\n".to_owned())
        }
    };
    if let Err(e) = respond(&stream, status, &body) {
        warn!(error = %e, "client went away");
    }
    info!(
        status,
        elapsed_us = started.elapsed().as_micros() as u64,
        "request served"
    );
}

fn route(method: &str, path: &str) -> (u16, String) {
    match (method, path.strip_prefix("/orders/")) {
        ("GET", Some(id)) => get_order(id),
        ("GET", None) if path == "/health" => {
            debug!("health check");
            (200, "ok\n".to_owned())
        }
        _ => {
            warn!("no such route");
            (404, "not found\n".to_owned())
        }
    }
}

fn get_order(id: &str) -> (u16, String) {
    let Ok(order) = id.parse::<u64>() else {
        warn!(order_id = id, "order id is not a number");
        return (400, "bad order id\n".to_owned());
    };
    let span = info_span!("db", table = "orders", order_id = order);
    let _enter = span.enter();
    info!(rows = 1_u64, "order loaded");
    if order % 7 == 0 {
        error!(
            order_id = order,
            reason = "payment provider timeout",
            "order is stuck"
        );
        return (503, "try again later\n".to_owned());
    }
    (
        200,
        format!("{{\"order\": {order}, \"status\": \"shipped\"}}\n"),
    )
}

fn read_request_line(stream: &TcpStream) -> Result<(String, String), Error> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(method), Some(path)) => Ok((method.to_owned(), path.to_owned())),
        _ => Err(format!("malformed request line {line:?}").into()),
    }
}

fn respond(mut stream: &TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Plays the clients: `n` requests, one per connection, to a mix of routes.
fn drive(addr: SocketAddr, n: usize) -> Result<(), Error> {
    for i in 0..n {
        let path = match i % 5 {
            0 => "/health".to_owned(),
            4 => "/nowhere".to_owned(),
            _ => format!("/orders/{i}"),
        };
        let mut stream = TcpStream::connect(addr)?;
        write!(stream, "GET {path} HTTP/1.1\r\nhost: app\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
    }
    Ok(())
}
