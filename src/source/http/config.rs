//! The validated settings of one `[[source]] type = "http"`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ConfigError, SourceConfig};

/// Where `POST /events` listens when `listen` is not set (`logship serve` takes 9880).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9881";

/// When a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ack {
    /// 202 once the events are queued: an agent crash loses what is queued.
    Accepted,
    /// 200 once Cassandra acknowledged the unit holding the request's events.
    Written,
}

/// A PEM certificate chain and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// One HTTP source, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSourceSpec {
    /// The source's name (metrics label, log lines).
    pub name: String,
    /// Address to bind.
    pub listen: SocketAddr,
    /// The bearer token clients must send, read from `token_file`.
    pub token: Option<String>,
    /// HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Headers must arrive within this.
    pub header_timeout: Duration,
    /// The body must arrive within this after the headers.
    pub body_timeout: Duration,
    /// When requests are answered.
    pub ack: Ack,
    /// `ack = "written"`: the longest a request waits for Cassandra.
    pub write_timeout: Duration,
    /// How long a unit waits to fill before it is written.
    pub linger: Duration,
    /// Events the source's queue holds.
    pub queue_capacity: usize,
    /// `USING TTL` of the rows; `None` keeps the table's default.
    pub ttl: Option<Duration>,
    /// Partition bucket width.
    pub bucket: Duration,
}

impl HttpSourceSpec {
    /// Checks `source` (a `type = "http"` one); `err` builds an error at one of its keys.
    pub fn validate(
        source: &SourceConfig,
        err: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<HttpSourceSpec, ConfigError> {
        for (key, set) in [
            ("paths", !source.paths.is_empty()),
            ("exclude", !source.exclude.is_empty()),
            ("format", !source.format.is_empty()),
            ("log_format", source.log_format.is_some()),
            ("prefix", source.prefix.is_some()),
            ("timezone", source.timezone.is_some()),
            ("request_id_field", source.request_id_field.is_some()),
            ("trace_id_field", source.trace_id_field.is_some()),
        ] {
            if set {
                return Err(err(key, "is for file sources, not type = \"http\"".into()));
            }
        }
        if source.table != crate::pipeline::Table::InfrastructureLogs {
            // The default; events always go to application_logs.
            return Err(err(
                "table",
                "an http source always writes application_logs: leave table out".into(),
            ));
        }
        let listen_text = source.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|e| err("listen", format!("{listen_text:?} is not ip:port: {e}")))?;
        let token = match &source.token_file {
            Some(path) => Some(read_token(path).map_err(|m| err("token_file", m))?),
            None => None,
        };
        let tls = match (&source.tls_cert, &source.tls_key) {
            (Some(cert), Some(key)) => {
                for (k, p) in [("tls_cert", cert), ("tls_key", key)] {
                    if let Err(e) = std::fs::metadata(p) {
                        return Err(err(k, format!("{} cannot be read: {e}", p.display())));
                    }
                }
                Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (Some(_), None) => return Err(err("tls_cert", "is set without tls_key".into())),
            (None, Some(_)) => return Err(err("tls_key", "is set without tls_cert".into())),
            (None, None) => None,
        };
        let ack = match source.ack.as_deref().unwrap_or("accepted") {
            "accepted" => Ack::Accepted,
            "written" => Ack::Written,
            other => {
                return Err(err(
                    "ack",
                    format!("{other:?} is not \"accepted\" or \"written\""),
                ));
            }
        };
        let at_least = |key: &str, value: usize, min: usize| {
            if value < min {
                Err(err(key, format!("must be at least {min}")))
            } else {
                Ok(value)
            }
        };
        let max_body_bytes = at_least(
            "max_body_bytes",
            source.max_body_bytes.unwrap_or(1 << 20),
            64,
        )?;
        let max_connections =
            at_least("max_connections", source.max_connections.unwrap_or(1024), 1)?;
        let queue_capacity =
            at_least("queue_capacity", source.queue_capacity.unwrap_or(10_000), 1)?;
        let nonzero = |key: &str, value: Option<Duration>, default: u64| {
            let d = value.unwrap_or(Duration::from_secs(default));
            if d.is_zero() {
                Err(err(key, "must be more than 0".into()))
            } else {
                Ok(d)
            }
        };
        if let Some(ttl) = source.ttl {
            crate::limits::check_ttl(ttl)
                .map_err(|e| err("ttl", format!("{ttl:?} is out of range: {e}")))?;
        }
        crate::limits::check_bucket(source.bucket).map_err(|e| {
            err(
                "bucket",
                format!("{:?} is out of range: {e}", source.bucket),
            )
        })?;
        Ok(HttpSourceSpec {
            name: source.name.clone(),
            listen,
            token,
            tls,
            max_body_bytes,
            max_connections,
            header_timeout: nonzero("header_timeout", source.header_timeout, 10)?,
            body_timeout: nonzero("body_timeout", source.body_timeout, 30)?,
            ack,
            write_timeout: nonzero("write_timeout", source.write_timeout, 10)?,
            linger: source.linger.unwrap_or(Duration::from_millis(50)),
            queue_capacity,
            ttl: source.ttl,
            bucket: source.bucket,
        })
    }
}

/// The token in `path`: one line, not readable by group or others.
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others: chmod 600 it",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigFile};

    fn load(text: &str) -> Result<Config, String> {
        let file = ConfigFile::from_text(Path::new("/main.toml"), text, |_| None).unwrap();
        Config::from_files(&[file]).map_err(|e| e.to_string())
    }

    #[test]
    fn an_http_source_takes_its_defaults_and_is_not_tailed() {
        let c = load("[[source]]\nname = \"events\"\ntype = \"http\"\n").unwrap();
        assert!(c.sources.is_empty());
        let s = &c.http_sources[0];
        assert_eq!(s.listen.to_string(), super::DEFAULT_LISTEN);
        assert_eq!(s.ack, super::Ack::Accepted);
        assert_eq!(s.max_body_bytes, 1 << 20);
    }

    #[test]
    fn bad_http_values_name_the_file_line_and_key() {
        let err = load("[[source]]\nname = \"e\"\ntype = \"http\"\n\nlisten = \"localhost\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("/main.toml:5:1: source[e].listen: \"localhost\" is not ip:port"),
            "{err}"
        );
        let err = load("[[source]]\nname = \"e\"\ntype = \"http\"\nack = \"maybe\"\n").unwrap_err();
        assert!(err.starts_with("/main.toml:4:1: source[e].ack:"), "{err}");
        let err =
            load("[[source]]\nname = \"e\"\ntype = \"http\"\npaths = [\"/x\"]\n").unwrap_err();
        assert!(
            err.starts_with("/main.toml:4:1: source[e].paths: is for file sources"),
            "{err}"
        );
        let err = load("[[source]]\nname = \"f\"\npaths = [\"/x\"]\nformat = \"syslog\"\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(
            err.starts_with("/main.toml:5:1: source[f].listen: is for type = \"http\""),
            "{err}"
        );
        let err = load("[[source]]\nname = \"e\"\ntype = \"udp\"\n").unwrap_err();
        assert!(err.contains("/main.toml:3"), "{err}");
    }

    #[test]
    fn a_token_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("logship-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[[source]]\nname = \"e\"\ntype = \"http\"\ntoken_file = \"{}\"\n",
            token.display()
        );
        let err = load(&text).unwrap_err();
        assert!(
            err.contains("source[e].token_file:") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load(&text).unwrap();
        assert_eq!(c.http_sources[0].token.as_deref(), Some("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
