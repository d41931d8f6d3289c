//! nginx access logs, parsed with a parser compiled from the `log_format` that wrote them.

mod access;
mod escape;
mod log_format;
#[cfg(test)]
mod props;
pub(crate) mod timestamp;

pub use access::AccessParser;
pub use escape::escape_default;

/// nginx's predefined `combined` format, the default of `access_log`.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
