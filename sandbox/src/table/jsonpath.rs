//! The JSONPath subset CRD printer columns use (k8s.io/client-go/util/jsonpath):
//! `.a.b`, `['a.b']`, escaped dots (`a\.b`), `[0]`, `[-1]`, `[*]`, `.*`,
//! and filters `[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=`
//! or bare existence `[?(@.x)]`.

use serde_json::Value;

/// Why a JSONPath expression did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JSONPath {path:?}: {reason}")]
pub struct JsonPathError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter {
        path: Vec<Step>,
        test: Option<(String, Value)>,
    },
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parse `.spec.a`, `{.spec.a}` or `$.spec.a`.
    pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
        let err = |reason: &str| JsonPathError {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        let mut s = text.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let steps = parse_steps(s).map_err(|r| err(&r))?;
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order (missing keys select nothing).
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, root)
    }
}

fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => {
                    if let Some(items) = v.as_array() {
                        let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| items.get(i)));
                    }
                }
                Step::Wildcard => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Filter { path, test } => {
                    let candidates: Vec<&Value> = match v {
                        Value::Array(items) => items.iter().collect(),
                        Value::Object(map) => map.values().collect(),
                        _ => Vec::new(),
                    };
                    next.extend(candidates.into_iter().filter(|c| filter_matches(path, test, c)));
                }
            }
        }
        current = next;
    }
    current
}

fn filter_matches(path: &[Step], test: &Option<(String, Value)>, candidate: &Value) -> bool {
    let found = eval(path, candidate);
    let Some((op, literal)) = test else {
        return !found.is_empty();
    };
    let Some(left) = found.first() else { return false };
    match op.as_str() {
        "==" => *left == literal,
        "!=" => *left != literal,
        _ => {
            let ordering = match (left, literal) {
                (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                _ => None,
            };
            let Some(ordering) = ordering else { return false };
            match op.as_str() {
                "<" => ordering.is_lt(),
                "<=" => ordering.is_le(),
                ">" => ordering.is_gt(),
                _ => ordering.is_ge(),
            }
        }
    }
}

fn parse_steps(s: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                match name.as_str() {
                    "" => return Err("empty field name (recursive descent is not supported)".into()),
                    "*" => steps.push(Step::Wildcard),
                    _ => steps.push(Step::Field(name)),
                }
            }
            '[' => {
                let close = find_bracket_end(&chars, i).ok_or("unclosed '['")?;
                let inner: String = chars[i + 1..close].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = close + 1;
            }
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(steps)
}

/// The index of the `]` closing the `[` at `open`, skipping quoted text.
fn find_bracket_end(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Ok(i) = inner.parse::<i64>() {
        return Ok(Step::Index(i));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported subscript [{inner}]"))?
        .trim();
    let rel = filter.strip_prefix('@').ok_or("a filter must start with @")?;
    let op_at = ["==", "!=", "<=", ">=", "<", ">"]
        .iter()
        .filter_map(|op| rel.find(op).map(|p| (p, *op)))
        .min();
    let (path_text, test) = match op_at {
        Some((pos, op)) => {
            let literal = parse_literal(rel[pos + op.len()..].trim())?;
            (&rel[..pos], Some((op.to_string(), literal)))
        }
        None => (rel, None),
    };
    Ok(Step::Filter {
        path: parse_steps(path_text.trim())?,
        test,
    })
}

fn unquote(s: &str) -> Option<String> {
    let quoted = (s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"'));
    (quoted && s.len() >= 2).then(|| s[1..s.len() - 1].to_string())
}

fn parse_literal(s: &str) -> Result<Value, String> {
    if let Some(text) = unquote(s) {
        return Ok(Value::String(text));
    }
    serde_json::from_str(s).map_err(|_| format!("unsupported filter literal {s}"))
}
