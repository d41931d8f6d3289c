//! Sources that listen on the network rather than tail files.
//!
//! - [`http`]: `POST /events` (JSON, arrays, NDJSON) into `application_logs`, through its
//!   own queue and an instance of the one drain loop.
//! - [`syslog`]: syslog over UDP, TCP and a Unix socket into `infrastructure_logs`, through
//!   the same bounded queue and drain loop as file records.

pub mod http;
pub mod syslog;
