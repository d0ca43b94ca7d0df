//! `--log-format json`: one object per line with `timestamp`, `level`, `target`,
//! `message`, `span` (innermost span's name) and every field of the event and of its
//! spans at the top level, so a pipeline can filter on `namespace` or `plan` without
//! knowing which span carried it.

use std::fmt;

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Keys every line has; a field of the same name is written as `field.NAME`.
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "message", "span"];

/// The flat JSON event format (span fields must be recorded with `JsonFields`).
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Map::new();
        let mut innermost = None;
        // Root to leaf, then the event: the most specific value wins on a clash.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let recorded = extensions
                    .get::<FormattedFields<N>>()
                    .and_then(|f| serde_json::from_str::<Value>(&f.fields).ok());
                if let Some(Value::Object(map)) = recorded {
                    fields.extend(map);
                }
            }
        }
        event.record(&mut Collect(&mut fields));
        let message = fields.remove("message");

        let mut line = Line::default();
        line.push("timestamp", Value::String(now()));
        line.push("level", Value::String(meta.level().as_str().into()));
        line.push("target", Value::String(meta.target().into()));
        if let Some(message) = message {
            line.push("message", message);
        }
        if let Some(span) = innermost {
            line.push("span", Value::String(span.into()));
        }
        for (key, value) in fields {
            if RESERVED.contains(&key.as_str()) {
                line.push(&format!("field.{key}"), value);
            } else {
                line.push(&key, value);
            }
        }
        writeln!(writer, "{}}}", line.0)
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A JSON object being written in a fixed key order (serde_json's map would sort it).
#[derive(Default)]
struct Line(String);

impl Line {
    fn push(&mut self, key: &str, value: Value) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        // Serialising a string or a Value cannot fail.
        self.0.push_str(&serde_json::to_string(key).unwrap_or_default());
        self.0.push(':');
        self.0
            .push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".into()));
    }
}

/// Records an event's fields as JSON values (numbers stay numbers).
struct Collect<'a>(&'a mut Map<String, Value>);

impl Collect<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
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
    use tracing_subscriber::fmt::format::JsonFields;

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

    #[test]
    fn lines_are_flat_json_with_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reconcile", namespace = "shop", plan = "orders");
            let _entered = span.enter();
            tracing::info!(bytes = 42u64, seconds = 1.5, ok = true, level = "x", member = %"db-1", "backup \"done\"");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "backup \"done\"");
        assert_eq!(line["span"], "reconcile");
        assert_eq!(line["namespace"], "shop");
        assert_eq!(line["plan"], "orders");
        assert_eq!(line["member"], "db-1");
        assert_eq!(line["bytes"], 42);
        assert_eq!(line["seconds"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["field.level"], "x", "a field never overwrites a fixed key");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(text.starts_with("{\"timestamp\""), "fixed keys first: {text}");
    }
}
