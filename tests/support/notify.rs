//! A test `NOTIFY_SOCKET`: every datagram the agent sends to systemd, with when it came.
//!
//! Included with `#[path = "support/notify.rs"] mod notify;`.
#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The messages received so far, oldest first.
pub(crate) type Messages = Arc<Mutex<Vec<(Instant, String)>>>;

/// Binds `path` and collects every datagram sent to it, for the rest of the test process.
pub(crate) fn listen(path: &Path) -> Messages {
    let socket = UnixDatagram::bind(path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("socket timeout");
    let messages: Messages = Arc::default();
    let sink = Arc::clone(&messages);
    std::thread::spawn(move || {
        let mut buf = vec![0_u8; 4096];
        // Ends with the test process; a closed peer never errors a bound datagram socket.
        loop {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        }
    });
    messages
}

/// A copy of the messages received so far.
pub(crate) fn snapshot(m: &Messages) -> Vec<(Instant, String)> {
    m.lock().unwrap().clone()
}
