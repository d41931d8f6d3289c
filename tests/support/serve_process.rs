//! The real `logship serve` binary under test: its config in a temp directory, the child
//! process with its stderr collected, killed when dropped.
//!
//! Included with `#[path = "support/serve_process.rs"] mod serve_process;` beside
//! `mod support;` and `#[path = "support/http_client.rs"] mod http_client;`.
#![allow(dead_code)]

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http_client::request;
use crate::support::cassandra::Node;

pub(crate) struct ServeProcess {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

impl ServeProcess {
    /// Starts `logship serve` on a free port of 127.0.0.1 over `keyspace` of `node`,
    /// asking for `token` when given, and waits until `/health` answers 200.
    pub(crate) fn start(node: &Node, keyspace: &str, token: Option<&str>) -> ServeProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "[cassandra]\ncontact_points = [\"{}\"]\nport = {}\nkeyspace = \"{keyspace}\"\n\n\
             [serve]\nlisten = \"127.0.0.1:{port}\"\nmax_limit = 500\n",
            node.host, node.port
        );
        if let Some(token) = token {
            let path = dir.path().join("token");
            std::fs::write(&path, format!("{token}\n")).expect("write the token file");
            config.push_str(&format!("token_file = \"{}\"\n", path.display()));
        }
        let config_path = dir.path().join("logship.toml");
        std::fs::write(&config_path, config).expect("write the config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start logship serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let serve = ServeProcess {
            child,
            port,
            _dir: dir,
            stderr,
        };
        let start = Instant::now();
        loop {
            if let Ok(a) = request(port, "GET", "/health", &[], None) {
                assert_eq!(a.status, 200, "/health: {}", a.body);
                return serve;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "logship serve did not answer /health within 60 s; stderr:\n{}",
                serve.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, and the exit status within `timeout` (panics if it does not exit).
    pub(crate) fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for logship serve") {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "logship serve did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
