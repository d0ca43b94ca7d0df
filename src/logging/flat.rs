//! lifeboat's two line formats, both flat: the event's fields and those of the spans it
//! happened in (root to leaf; the most specific value wins) on one line, so a reader or
//! a pipeline finds `namespace` or `plan` without knowing which span carried it.
//!
//! - JSON: `timestamp`, `level`, `target`, `message`, `span` (innermost span), then
//!   every field; numbers stay numbers.
//! - Text: `timestamp LEVEL message key=value ...`; values with spaces are quoted. The
//!   fields of kube-runtime's own `reconciling object` span are left out: lifeboat's
//!   reconcile span names the same object more briefly; nor are the source locations
//!   of `log` records from dependencies.

use std::fmt;

use serde_json::{Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Keys every JSON line has; a field of the same name is written as `field.NAME`.
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "message", "span"];

/// kube-runtime's span around each reconcile (fields `object.ref`, `object.reason`).
const KUBE_RUNTIME_SPAN: &str = "reconciling object";

/// Fields tracing-log adds to records of the `log` crate (e.g. tokio-postgres notices).
const LOG_LOCATION: [&str; 3] = ["log.module_path", "log.file", "log.line"];

/// The flat event format (span fields must be recorded with [`PairFields`]).
pub struct Flat {
    pub json: bool,
}

/// Fields in order of appearance; a later value for a key replaces the earlier one.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }
    fn take(&mut self, key: &str) -> Option<Value> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }
}

impl<S, N> FormatEvent<S, N> for Flat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                innermost = Some(span.name());
                if !self.json && span.name() == KUBE_RUNTIME_SPAN {
                    continue;
                }
                let extensions = span.extensions();
                if let Some(recorded) = extensions.get::<FormattedFields<N>>() {
                    for (key, value) in pairs(&recorded.fields) {
                        fields.set(&key, value);
                    }
                }
            }
        }
        let mut event_fields = Fields::default();
        event.record(&mut Collect(&mut event_fields));
        let message = event_fields.take("message");
        for (key, value) in event_fields.0 {
            // Where in a dependency a `log` record came from: noise when read by a person.
            if !self.json && LOG_LOCATION.contains(&key.as_str()) {
                continue;
            }
            fields.set(&key, value);
        }
        let line = if self.json {
            json_line(meta, message, innermost, fields)
        } else {
            text_line(*meta.level(), message, fields, writer.has_ansi_escapes())
        };
        writeln!(writer, "{line}")
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn json_line(meta: &tracing::Metadata<'_>, message: Option<Value>, span: Option<&str>, fields: Fields) -> String {
    let mut line = JsonLine::default();
    line.push("timestamp", Value::String(now()));
    line.push("level", Value::String(meta.level().as_str().into()));
    line.push("target", Value::String(meta.target().into()));
    if let Some(message) = message {
        line.push("message", message);
    }
    if let Some(span) = span {
        line.push("span", Value::String(span.into()));
    }
    for (key, value) in fields.0 {
        if RESERVED.contains(&key.as_str()) {
            line.push(&format!("field.{key}"), value);
        } else {
            line.push(&key, value);
        }
    }
    line.0.push('}');
    line.0
}

fn text_line(level: Level, message: Option<Value>, fields: Fields, ansi: bool) -> String {
    let (colour, name) = match level {
        Level::ERROR => ("31", "ERROR"),
        Level::WARN => ("33", " WARN"),
        Level::INFO => ("32", " INFO"),
        Level::DEBUG => ("34", "DEBUG"),
        Level::TRACE => ("35", "TRACE"),
    };
    let mut line = now();
    line.push(' ');
    if ansi {
        line.push_str(&format!("\u{1b}[{colour}m{name}\u{1b}[0m"));
    } else {
        line.push_str(name);
    }
    if let Some(message) = message {
        line.push(' ');
        line.push_str(&plain(&message));
    }
    for (key, value) in fields.0 {
        line.push_str(&format!(" {key}={}", text_value(&value)));
    }
    line
}

/// A value as text: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A field value for `key=value`: quoted only when it would not read as one token.
fn text_value(value: &Value) -> String {
    let text = plain(value);
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        format!("{text:?}")
    } else {
        text
    }
}

/// A JSON object written in a fixed key order (serde_json's map may sort it).
#[derive(Default)]
struct JsonLine(String);

impl JsonLine {
    fn push(&mut self, key: &str, value: Value) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        // Serialising a string or a Value cannot fail.
        self.0.push_str(&serde_json::to_string(key).unwrap_or_default());
        self.0.push(':');
        self.0
            .push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".into()));
    }
}

/// Records span fields as a JSON array of `[key, value]` pairs, in the order they
/// were declared (a JSON object would come back sorted).
pub struct PairFields;

fn pairs(text: &str) -> Vec<(String, Value)> {
    serde_json::from_str(text).unwrap_or_default()
}

impl<'w> FormatFields<'w> for PairFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut collected = Fields::default();
        fields.record(&mut Collect(&mut collected));
        write!(writer, "{}", serde_json::to_string(&collected.0).unwrap_or_default())
    }

    fn add_fields(&self, current: &mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        let mut collected = Fields(pairs(&current.fields));
        fields.record(&mut Collect(&mut collected));
        current.fields = serde_json::to_string(&collected.0).unwrap_or_default();
        Ok(())
    }
}

/// Records an event's fields as JSON values (numbers stay numbers).
struct Collect<'a>(&'a mut Fields);

impl Collect<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.set(field.name(), value);
    }
}

impl Visit for Collect<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.into()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// One event inside kube-runtime's span and a reconcile span, formatted.
    fn render(json: bool, ansi: bool) -> String {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .with_ansi(ansi)
            .fmt_fields(PairFields)
            .event_format(Flat { json })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("reconciling object", "object.ref" = "Backup/x");
            let _outer = outer.enter();
            let span = tracing::info_span!(
                "reconcile",
                plan = "orders",
                namespace = "shop",
                backup = tracing::field::Empty
            );
            span.record("backup", "b1");
            let _entered = span.enter();
            tracing::info!(bytes = 42u64, seconds = 1.5, ok = true, level = "x", member = %"db-1", note = "two words", "backup \"done\"");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_are_flat_with_span_fields() {
        let text = render(true, false);
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "backup \"done\"");
        assert_eq!(line["span"], "reconcile");
        assert_eq!(line["namespace"], "shop");
        assert_eq!(line["plan"], "orders");
        assert_eq!(line["backup"], "b1", "recorded later");
        assert_eq!(line["object.ref"], "Backup/x");
        assert_eq!(line["member"], "db-1");
        assert_eq!(line["bytes"], 42);
        assert_eq!(line["seconds"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["field.level"], "x", "a field never overwrites a fixed key");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(text.starts_with("{\"timestamp\""), "fixed keys first: {text}");
    }

    #[test]
    fn text_lines_put_the_message_first_then_context_then_fields() {
        let text = render(false, false);
        let (_, rest) = text.trim().split_once(' ').expect("timestamp first");
        assert_eq!(
            rest.trim_start(),
            r#"INFO backup "done" plan=orders namespace=shop backup=b1 bytes=42 seconds=1.5 ok=true level=x member=db-1 note="two words""#
        );
        assert!(!text.contains('\u{1b}'), "no escape codes unless asked");
        assert!(
            render(false, true).contains("\u{1b}[32m INFO\u{1b}[0m"),
            "coloured level on a terminal"
        );
    }
}
