//! What flows between sources and sinks: records with their origin ([`item`]), the
//! bounded queue ([`queue`]), flush units ([`batch`]) and the one drain loop that writes
//! them through a sink and acknowledges them ([`drain`]), with what it reports
//! ([`progress`]) and the threads' liveness ([`heartbeat`]).

pub mod batch;
pub mod drain;
pub mod heartbeat;
pub mod item;
pub mod progress;
pub mod queue;

pub use item::{FileId, FileRecord, Origin, Route, Table};
pub use queue::{QueueReceiver, QueueSender, QueueStats};
