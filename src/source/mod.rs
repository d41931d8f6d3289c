//! Sources that listen on the network rather than tail files. Their records go into the
//! same bounded queue and through the same drain loop as file records.

pub mod syslog;
