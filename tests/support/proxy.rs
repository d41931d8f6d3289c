//! A TCP proxy in the test, between the agent and a real Cassandra node, that can make the
//! network path slow or dead while Cassandra itself stays real.
//!
//! Modes, switched at any time with [`Proxy::set`]:
//! - `Pass`: bytes flow both ways as they come.
//! - `Slow { min, max }`: every chunk Cassandra sends back is held for a random delay in
//!   `min..=max` before it reaches the agent (order kept: a chunk never overtakes the one
//!   before it), like a node that answers late.
//! - `BlackHole`: connections are accepted and then never answered: what the agent sends is
//!   read and dropped, nothing comes back, on new and on open connections alike (a node
//!   behind a firewall that drops packets, or a hung JVM).
//! - `Refuse`: new connections are closed at once (a node that is down); open ones are cut.
//!
//! Included with `#[path = "support/proxy.rs"] mod proxy;`.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Pass,
    Slow { min: Duration, max: Duration },
    BlackHole,
    Refuse,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    /// Bytes from the agent dropped by the black hole.
    swallowed: AtomicU64,
    /// Chunks from Cassandra that were held back by `Slow`.
    delayed: AtomicU64,
}

struct State {
    mode: Mutex<Mode>,
    /// Bumped on every switch to `Refuse`, so open connections see that they must close.
    generation: AtomicU64,
    counters: Counters,
}

impl State {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy on 127.0.0.1:`port`, forwarding to `upstream`.
pub(crate) struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    pub(crate) fn start(upstream: &str, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            mode: Mutex::new(mode),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
        });
        let upstream = upstream.to_owned();
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                accept_state
                    .counters
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                let state = Arc::clone(&accept_state);
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(client, &upstream, state));
            }
        });
        Proxy { port, state }
    }

    /// `127.0.0.1:<port>`, the contact point to give the agent.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        if mode == Mode::Refuse {
            self.state.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.state.mode()
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.state.counters.accepted.load(Ordering::Relaxed)
    }

    /// Bytes the black hole swallowed so far.
    pub(crate) fn swallowed(&self) -> u64 {
        self.state.counters.swallowed.load(Ordering::Relaxed)
    }

    /// Response chunks the slow mode held back so far.
    pub(crate) fn delayed(&self) -> u64 {
        self.state.counters.delayed.load(Ordering::Relaxed)
    }
}

/// How often a blocked read wakes up to look at the mode.
const TICK: Duration = Duration::from_millis(100);

fn serve(client: TcpStream, upstream: &str, state: Arc<State>) {
    let born = state.generation.load(Ordering::SeqCst);
    match state.mode() {
        Mode::Refuse => return,
        Mode::BlackHole => {
            // Accept and never answer; forward nothing even if the mode changes later,
            // as a connection that hung stays hung.
            swallow(&client, &state, born);
            return;
        }
        Mode::Pass | Mode::Slow { .. } => {}
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_state = Arc::clone(&state);
    std::thread::spawn(move || agent_to_cassandra(c2, s2, &up_state, born));
    cassandra_to_agent(server, client, &state, born);
}

fn cut(state: &State, born: u64) -> bool {
    state.generation.load(Ordering::SeqCst) != born
}

fn swallow(client: &TcpStream, state: &State, born: u64) {
    let _ = client.set_read_timeout(Some(TICK));
    let mut buf = [0_u8; 16 * 1024];
    let mut reader = client;
    loop {
        if cut(state, born) {
            break;
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                state
                    .counters
                    .swallowed
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn agent_to_cassandra(mut client: TcpStream, mut server: TcpStream, state: &State, born: u64) {
    let _ = client.set_read_timeout(Some(TICK));
    let mut buf = [0_u8; 64 * 1024];
    loop {
        if cut(state, born) {
            break;
        }
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if state.mode() == Mode::BlackHole {
                    state
                        .counters
                        .swallowed
                        .fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                if server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

fn cassandra_to_agent(mut server: TcpStream, client: TcpStream, state: &Arc<State>, born: u64) {
    let _ = server.set_read_timeout(Some(TICK));
    // Chunks go through a delivery thread, so a slow chunk holds back the ones after it
    // (order kept) without stopping this side from reading.
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let deliver_state = Arc::clone(state);
    let mut out = match client.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let delivery = std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if cut(&deliver_state, born) || out.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = out.shutdown(Shutdown::Both);
    });
    let mut buf = [0_u8; 64 * 1024];
    let mut last_due = Instant::now();
    let mut seed = u64::from(std::process::id()) ^ born.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    loop {
        if cut(state, born) {
            break;
        }
        match server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let due = match state.mode() {
                    Mode::Slow { min, max } => {
                        state.counters.delayed.fetch_add(1, Ordering::Relaxed);
                        let span = max.saturating_sub(min).as_millis() as u64;
                        seed = seed
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let extra = if span == 0 {
                            0
                        } else {
                            (seed >> 33) % (span + 1)
                        };
                        Instant::now() + min + Duration::from_millis(extra)
                    }
                    // A black-holed connection answers nothing.
                    Mode::BlackHole => continue,
                    Mode::Pass | Mode::Refuse => Instant::now(),
                };
                last_due = last_due.max(due);
                if tx.send((last_due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    drop(tx);
    let _ = delivery.join();
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}
