//! The null sink: acknowledges every unit at once, writing nothing. For benchmarks of the
//! agent's own path (files → parse → queue → drain loop) without an output's cost.

use std::marker::PhantomData;

use super::deadletter::DeadLetterEntry;
use super::retry::RowFailure;
use crate::pipeline::drain::{self, Stop};

/// Writes nothing, acknowledges everything.
#[derive(Debug)]
pub struct NullSink<T> {
    _items: PhantomData<fn(T)>,
}

impl<T> Default for NullSink<T> {
    fn default() -> Self {
        NullSink {
            _items: PhantomData,
        }
    }
}

impl<T> drain::Sink for NullSink<T> {
    type Item = T;

    fn write(&mut self, _unit: &[T], _pending: &[usize], _stop: &Stop) -> Vec<RowFailure> {
        Vec::new()
    }

    fn dead_letter(&self, _item: &T, reason: &str) -> DeadLetterEntry {
        DeadLetterEntry {
            refused_at: jiff::Timestamp::now().to_string(),
            table: "null",
            id: String::new(),
            reason: reason.to_owned(),
            record: serde_json::Value::Null,
        }
    }
}
