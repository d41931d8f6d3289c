//! The agent's own journald lines come back through rsyslog into the syslog files it
//! tails: they are acknowledged without shipping, or shipping would log about itself.

use std::time::Duration;

use logship::pipeline::FileRecord;
use logship::pipeline::drain::{self, Stop};
use logship::sink::deadletter::DeadLetterEntry;
use logship::sink::retry::RowFailure;

/// The syslog `appname` of the agent's own lines.
const OWN_APP: &str = "logship";

/// Whether a record is one of the agent's own log lines.
pub(super) fn is_own(r: &FileRecord) -> bool {
    r.record.field("appname").is_some_and(|a| a == OWN_APP)
}

/// Passes to the sink only records that are not the agent's own log lines; the drain loop
/// acknowledges the others with the unit, as written.
pub(super) struct SkipOwn(pub(super) Box<dyn drain::Sink<Item = FileRecord>>);

impl drain::Sink for SkipOwn {
    type Item = FileRecord;

    fn write(&mut self, unit: &[FileRecord], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        if !unit.iter().any(is_own) {
            return self.0.write(unit, pending, stop);
        }
        let ship: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&i| !is_own(&unit[i]))
            .collect();
        if ship.is_empty() {
            return Vec::new();
        }
        self.0.write(unit, &ship, stop)
    }

    fn dead_letter(&self, item: &FileRecord, reason: &str) -> DeadLetterEntry {
        self.0.dead_letter(item, reason)
    }

    fn attempt_bound(&self) -> Duration {
        self.0.attempt_bound()
    }
}
