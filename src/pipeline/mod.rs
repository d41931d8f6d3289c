//! What flows between sources and the sink: records with their origin, the bounded queue,
//! and flush units.

pub mod batch;
pub mod drain;
pub mod heartbeat;
pub mod item;
pub mod progress;
pub mod queue;

pub use item::{FileId, FileRecord, Origin, Route, Table};
pub use queue::{QueueReceiver, QueueSender, QueueStats};
