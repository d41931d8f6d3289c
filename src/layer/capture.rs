//! What the application thread does for each event and span: render fields into a reused
//! buffer, build one owned record, hand it to the worker without waiting.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crossbeam_channel::Sender;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use uuid::Uuid;

use super::worker::{self, LayerCounters, Msg};

/// Target of the rows the layer writes about itself (the dropped-events count).
pub const INTERNAL_TARGET: &str = "logship::layer";

/// A field's name and its value's byte range in [`CapturedEvent`]'s text.
type FieldRange = (&'static str, u32, u32);

/// One event, owned, as it left the application thread.
///
/// The message and every field value live in one string; the fields are ranges into it.
/// That keeps the capture to two allocations, whatever the number of fields.
#[derive(Debug)]
pub struct CapturedEvent {
    id: Uuid,
    timestamp: jiff::Timestamp,
    /// `None` for rows the layer writes about itself.
    meta: Option<&'static Metadata<'static>>,
    text: Box<str>,
    message: (u32, u32),
    fields: Box<[FieldRange]>,
    spans: Option<Arc<SpanFields>>,
    truncated: bool,
}

impl CapturedEvent {
    /// The row id, drawn at capture: every retry of this event writes the same row.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// When the event was captured.
    pub fn timestamp(&self) -> jiff::Timestamp {
        self.timestamp
    }

    /// The event's level; WARN for the layer's own rows.
    pub fn level(&self) -> Level {
        self.meta.map_or(Level::WARN, |m| *m.level())
    }

    /// The event's target (by default its module path); [`INTERNAL_TARGET`] for the
    /// layer's own rows.
    pub fn target(&self) -> &'static str {
        self.meta.map_or(INTERNAL_TARGET, |m| m.target())
    }

    /// The module the event was emitted in, when the callsite recorded it.
    pub fn module_path(&self) -> Option<&'static str> {
        match self.meta {
            Some(m) => m.module_path(),
            None => Some(module_path!()),
        }
    }

    /// The source file of the callsite, when recorded; `None` for the layer's own rows.
    pub fn file(&self) -> Option<&'static str> {
        self.meta.and_then(|m| m.file())
    }

    /// The line of the callsite in [`file`](Self::file), when recorded.
    pub fn line(&self) -> Option<u32> {
        self.meta.and_then(|m| m.line())
    }

    /// The event's `message` field (the format string of `info!("...")`), or empty.
    pub fn message(&self) -> &str {
        self.slice(self.message.0, self.message.1)
    }

    /// The event's own fields, other than `message`, rendered to text, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|&(name, start, end)| (name, self.slice(start, end)))
    }

    /// The fields of every enclosing span, outermost first; a name an inner span repeats
    /// takes the inner span's value.
    pub fn span_fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .flat_map(|s| s.fields.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// The `request_id` field of the event, or else of the innermost span that has one.
    pub fn request_id(&self) -> Option<&str> {
        self.id_field(REQUEST_ID)
    }

    /// The `trace_id` field of the event, or else of the innermost span that has one.
    pub fn trace_id(&self) -> Option<&str> {
        self.id_field(TRACE_ID)
    }

    /// True when the rendered fields exceeded the per-event size cap and were cut short.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// A row the layer writes about itself (e.g. how many events it dropped).
    pub(crate) fn internal(message: &str, fields: &[(&'static str, String)]) -> Self {
        let mut text = String::from(message);
        let message_end = text.len() as u32;
        let mut ranges = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let start = text.len() as u32;
            text.push_str(value);
            ranges.push((*name, start, text.len() as u32));
        }
        CapturedEvent {
            id: new_row_id(),
            timestamp: jiff::Timestamp::now(),
            meta: None,
            text: text.into_boxed_str(),
            message: (0, message_end),
            fields: ranges.into_boxed_slice(),
            spans: None,
            truncated: false,
        }
    }

    fn id_field(&self, name: &str) -> Option<&str> {
        self.fields()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .or_else(|| self.spans.as_ref().and_then(|s| s.get(name)))
    }

    fn slice(&self, start: u32, end: u32) -> &str {
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

/// The event or span field whose value fills the `request_id` column.
pub const REQUEST_ID: &str = "request_id";
/// The event or span field whose value fills the `trace_id` column.
pub const TRACE_ID: &str = "trace_id";

/// The fields of a span and of all its ancestors, rendered once when the span is created
/// (and again only when the span records a value), kept in the span's extensions.
#[derive(Debug, Default)]
pub struct SpanFields {
    fields: Vec<(&'static str, String)>,
}

impl SpanFields {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A random (v4) row id from the thread-local generator: no system call per event.
pub(crate) fn new_row_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The Layer proper. Wrapped in [`super::ShipFilter`] by the builder, so it only ever sees
/// events and spans that are meant to be shipped.
#[derive(Debug)]
pub struct EventShipper {
    pub(crate) tx: Sender<Msg>,
    pub(crate) shared: Arc<LayerCounters>,
    pub(crate) blocking: bool,
    pub(crate) max_event_bytes: usize,
}

impl<S> Layer<S> for EventShipper
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if worker::on_worker_thread() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = span
            .parent()
            .and_then(|p| {
                p.extensions()
                    .get::<Arc<SpanFields>>()
                    .map(|f| f.fields.clone())
            })
            .unwrap_or_default();
        attrs.record(&mut SpanVisitor {
            fields: &mut fields,
            cap: self.max_event_bytes,
        });
        span.extensions_mut()
            .insert(Arc::new(SpanFields { fields }));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if worker::on_worker_thread() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        // Events already captured keep the Arc they hold; later ones see the new values.
        let mut fields = extensions
            .get_mut::<Arc<SpanFields>>()
            .map(|f| f.fields.clone())
            .unwrap_or_default();
        values.record(&mut SpanVisitor {
            fields: &mut fields,
            cap: self.max_event_bytes,
        });
        let updated = Arc::new(SpanFields { fields });
        match extensions.get_mut::<Arc<SpanFields>>() {
            Some(slot) => *slot = updated,
            None => extensions.insert(updated),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if worker::on_worker_thread() {
            return;
        }
        let spans = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Arc<SpanFields>>().cloned());
        let captured = capture(event, spans, self.max_event_bytes);
        let msg = Msg::Event(captured);
        let sent = if self.blocking {
            self.tx.send(msg).is_ok()
        } else {
            self.tx.try_send(msg).is_ok()
        };
        if !sent {
            self.shared.note_dropped();
        }
    }
}

/// Per-thread scratch space: its capacity is kept from one event to the next.
#[derive(Default)]
struct Scratch {
    text: String,
    fields: Vec<FieldRange>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { text: String::new(), fields: Vec::new() })
    };
}

/// Renders `event` into an owned record. `max_bytes` caps the rendered text.
pub(crate) fn capture(
    event: &Event<'_>,
    spans: Option<Arc<SpanFields>>,
    max_bytes: usize,
) -> CapturedEvent {
    let timestamp = jiff::Timestamp::now();
    let fill = |scratch: &mut Scratch| {
        scratch.text.clear();
        scratch.fields.clear();
        let mut visitor = EventVisitor {
            scratch: &mut *scratch,
            message: (0, 0),
            cap: max_bytes,
            truncated: false,
        };
        event.record(&mut visitor);
        let (message, truncated) = (visitor.message, visitor.truncated);
        (
            Box::<str>::from(scratch.text.as_str()),
            Box::<[FieldRange]>::from(scratch.fields.as_slice()),
            message,
            truncated,
        )
    };
    // A field's Debug impl that logs re-enters here with the scratch borrowed, and a thread
    // being torn down has no thread-locals left: both get a fresh buffer.
    let rendered = SCRATCH
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => fill(&mut scratch),
            Err(_) => fill(&mut Scratch::default()),
        })
        .unwrap_or_else(|_| fill(&mut Scratch::default()));
    let (text, fields, message, truncated) = rendered;
    CapturedEvent {
        id: new_row_id(),
        timestamp,
        meta: Some(event.metadata()),
        text,
        message,
        fields,
        spans,
        truncated,
    }
}

/// A `fmt::Write` that stops (with an error, which ends the formatting) at `cap` bytes.
struct Capped<'a> {
    buf: &'a mut String,
    cap: usize,
    hit: bool,
}

impl fmt::Write for Capped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.cap.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.push_str(&s[..cut]);
        self.hit = true;
        Err(fmt::Error)
    }
}

/// Renders one value with `render`, capped so the whole buffer stays within `cap` bytes;
/// returns whether it was cut.
fn render_capped(buf: &mut String, cap: usize, render: impl FnOnce(&mut Capped<'_>)) -> bool {
    let mut out = Capped {
        buf,
        cap,
        hit: false,
    };
    render(&mut out);
    out.hit
}

struct EventVisitor<'a> {
    scratch: &'a mut Scratch,
    message: (u32, u32),
    cap: usize,
    truncated: bool,
}

impl EventVisitor<'_> {
    fn value(&mut self, field: &Field, render: impl FnOnce(&mut Capped<'_>)) {
        let start = self.scratch.text.len() as u32;
        self.truncated |= render_capped(&mut self.scratch.text, self.cap, render);
        let end = self.scratch.text.len() as u32;
        if field.name() == "message" {
            self.message = (start, end);
        } else {
            self.scratch.fields.push((field.name(), start, end));
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, |w| {
            let _ = w.write_str(value);
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, |w| {
            let _ = write!(w, "{value}");
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, |w| {
            let _ = write!(w, "{value}");
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, |w| {
            let _ = w.write_str(if value { "true" } else { "false" });
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, |w| {
            let _ = write_error_chain(w, value);
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, |w| {
            let _ = write!(w, "{value:?}");
        });
    }
}

/// An error and its causes, `outer: inner: root`, as `{:#}` prints an anyhow chain.
fn write_error_chain(
    w: &mut impl fmt::Write,
    error: &(dyn std::error::Error + 'static),
) -> fmt::Result {
    write!(w, "{error}")?;
    let mut source = error.source();
    while let Some(cause) = source {
        write!(w, ": {cause}")?;
        source = cause.source();
    }
    Ok(())
}

struct SpanVisitor<'a> {
    fields: &'a mut Vec<(&'static str, String)>,
    cap: usize,
}

impl SpanVisitor<'_> {
    fn value(&mut self, field: &Field, render: impl FnOnce(&mut Capped<'_>)) {
        let mut value = String::new();
        render_capped(&mut value, self.cap, render);
        match self.fields.iter_mut().find(|(k, _)| *k == field.name()) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((field.name(), value)),
        }
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, |w| {
            let _ = w.write_str(value);
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, |w| {
            let _ = write_error_chain(w, value);
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, |w| {
            let _ = write!(w, "{value:?}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_writer_cuts_on_a_char_boundary() {
        let mut buf = String::from("ab");
        let cut = render_capped(&mut buf, 5, |w| {
            let _ = w.write_str("cdé€");
        });
        assert!(cut);
        assert_eq!(buf, "abcd");
        let mut buf = String::new();
        assert!(!render_capped(&mut buf, 5, |w| {
            let _ = write!(w, "{}", 12345);
        }));
        assert_eq!(buf, "12345");
    }

    #[test]
    fn internal_rows_carry_their_fields() {
        let e = CapturedEvent::internal(
            "dropped",
            &[("dropped", "7".into()), ("capacity", "10".into())],
        );
        assert_eq!(e.message(), "dropped");
        assert_eq!(e.level(), Level::WARN);
        assert_eq!(e.target(), INTERNAL_TARGET);
        assert_eq!(
            e.fields().collect::<Vec<_>>(),
            vec![("dropped", "7"), ("capacity", "10")]
        );
        assert_eq!(e.request_id(), None);
    }

    #[test]
    fn row_ids_are_random_v4() {
        let a = new_row_id();
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, new_row_id());
    }
}
