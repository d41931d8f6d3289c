//! The listener threads: one per UDP or Unix socket, one accepting TCP connections and
//! one per connection.

use std::io::{ErrorKind, Read as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::{Emitter, Frame, Framer, Mode, POLL, Stream};
use crate::pipeline::heartbeat;

/// A bound socket waiting for its thread.
pub(super) enum Bound {
    Udp(UdpSocket, Emitter),
    /// With `max_connections`.
    Tcp(TcpListener, Emitter, usize),
    /// With the agent's host.
    Unix(UnixDatagram, Emitter, Arc<str>),
}

/// Binds a Unix datagram socket at `path`, replacing a stale socket left by a previous
/// run (but never another kind of file).
pub(super) fn bind_unix(path: &Path) -> std::io::Result<UnixDatagram> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    UnixDatagram::bind(path)
}

/// Room for the largest datagram (UDP payloads are at most 65507 bytes).
const DATAGRAM_BYTES: usize = 65_536;

impl Bound {
    pub(super) fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        match self {
            Bound::Udp(socket, e) => {
                socket.set_read_timeout(Some(POLL))?;
                thread(format!("syslog-udp {}", e.route.source), move || {
                    udp(&socket, &e)
                })
            }
            Bound::Unix(socket, e, host) => {
                socket.set_read_timeout(Some(POLL))?;
                let name = format!("syslog-unix {}", e.route.source);
                thread(name, move || unix(&socket, &e, host))
            }
            Bound::Tcp(listener, e, max) => {
                listener.set_nonblocking(true)?;
                let name = format!("syslog-tcp {}", e.route.source);
                thread(name, move || accept(&listener, &e, max))
            }
        }
    }
}

fn thread(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _beat = heartbeat::register_current(name);
            f();
        })
}

/// Whether a read error only means "nothing yet".
fn idle(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn udp(socket: &UdpSocket, e: &Emitter) {
    let mut buf = vec![0_u8; DATAGRAM_BYTES];
    let mut stream = Stream::new(&e.route, Arc::from(""));
    let mut peer_ip = None;
    while !e.stopping() {
        heartbeat::beat();
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                if peer_ip != Some(peer.ip()) {
                    peer_ip = Some(peer.ip());
                    stream.set_host(&peer.ip().to_string());
                }
                let message = trim_datagram(&buf[..n]);
                if !message.is_empty() {
                    let _ = e.emit(&mut stream, message, Frame::Whole, Mode::DropWhenFull);
                }
            }
            Err(err) if idle(&err) => {}
            Err(err) => {
                tracing::warn!(error = %err, source = %e.route.source, "syslog udp receive failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn unix(socket: &UnixDatagram, e: &Emitter, host: Arc<str>) {
    let mut buf = vec![0_u8; DATAGRAM_BYTES];
    let mut stream = Stream::new(&e.route, host);
    while !e.stopping() {
        heartbeat::beat();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let message = trim_datagram(&buf[..n]);
                if !message.is_empty()
                    && e.emit(&mut stream, message, Frame::Whole, Mode::Wait)
                        .is_err()
                {
                    return;
                }
            }
            Err(err) if idle(&err) => {}
            Err(err) => {
                tracing::warn!(error = %err, source = %e.route.source, "syslog unix receive failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// A datagram without the trailing newline, CR or NUL some senders add.
fn trim_datagram(d: &[u8]) -> &[u8] {
    let end = d
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    &d[..end]
}

/// Waits until `fd` is readable or `POLL` passes.
fn wait_readable(fd: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut p, 1, POLL.as_millis() as i32) };
}

/// Decrements the open-connection count when a connection thread ends, however it ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept(listener: &TcpListener, e: &Emitter, max: usize) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut full_logged = false;
    while !e.stopping() {
        heartbeat::beat();
        connections.retain(|c| !c.is_finished());
        if open.load(Ordering::Relaxed) >= max {
            // At the limit: leave new connections in the kernel's backlog until one ends.
            if !full_logged {
                tracing::warn!(source = %e.route.source, max_connections = max, "syslog tcp: connection limit reached; new connections wait");
                full_logged = true;
            }
            std::thread::sleep(POLL / 4);
            continue;
        }
        full_logged = false;
        match listener.accept() {
            Ok((socket, peer)) => {
                open.fetch_add(1, Ordering::Relaxed);
                let guard = Open(Arc::clone(&open));
                let e = e.clone();
                let name = format!("syslog-tcp {} {peer}", e.route.source);
                let spawned = thread(name, move || {
                    let _guard = guard;
                    connection(socket, &e, &peer.ip().to_string());
                });
                match spawned {
                    Ok(t) => connections.push(t),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot start a syslog connection thread; the connection is closed")
                    }
                }
            }
            Err(err) if idle(&err) => wait_readable(listener.as_raw_fd()),
            Err(err) => {
                tracing::warn!(error = %err, source = %e.route.source, "syslog tcp accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

fn connection(mut socket: TcpStream, e: &Emitter, peer: &str) {
    if socket.set_nonblocking(false).is_err() || socket.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut stream = Stream::new(&e.route, Arc::from(peer));
    let mut framer = Framer::new(e.max_bytes);
    let mut buf = vec![0_u8; 64 * 1024];
    let mut stopped = false;
    // Only a close by the peer ends the last message; a stop of the agent does not.
    let mut closed = false;
    while !stopped && !e.stopping() {
        heartbeat::beat();
        match socket.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => framer.push(&buf[..n], |m, f| {
                if !stopped && e.emit(&mut stream, m, f, Mode::Wait).is_err() {
                    stopped = true;
                }
            }),
            Err(err) if idle(&err) => {}
            Err(err) => {
                tracing::debug!(error = %err, peer, "syslog tcp connection failed");
                closed = true;
                break;
            }
        }
    }
    if closed && !stopped {
        framer.finish(|m, f| {
            let _ = e.emit(&mut stream, m, f, Mode::Wait);
        });
    }
}
