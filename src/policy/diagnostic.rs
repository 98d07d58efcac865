//! Errors and warnings about a policy, each tied to a file, line, column and field path,
//! printed the way compilers do so editors can jump to them. A parse error from the
//! YAML reader (serde's words: `invalid u32`, `expected sequence start`) is turned into
//! the field path, the value found and what was expected (`from_parse_error`).

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the place is unknown (a missing required key).
    pub line: usize,
    pub column: usize,
    /// `clusters[0].role.name`
    pub field: String,
    pub message: String,
    /// The value written, when the error is about it (`fifteen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// What the field takes (`a whole number from 0 to 4294967295`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// All the errors found in one policy (validation reports every problem at once, so a
/// reviewer fixes them in one pass).
#[derive(Debug)]
pub struct PolicyErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        write!(f, "the policy has {errors} error{}", if errors == 1 { "" } else { "s" })
    }
}

impl std::error::Error for PolicyErrors {}

/// Collects diagnostics while walking a policy.
pub struct Collector<'a> {
    pub file: &'a Path,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Collector<'a> {
    pub fn new(file: &'a Path) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
        }
    }

    pub fn push(&mut self, severity: Severity, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        let (line, column) = at.unwrap_or((0, 0));
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
            found: None,
            expected: None,
        });
    }

    pub fn error(&mut self, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        self.push(Severity::Error, at, field, message);
    }

    pub fn warning(&mut self, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        self.push(Severity::Warning, at, field, message);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

// ------------------------------------------------------------------ parse errors

/// The YAML as a tree of nodes with their places: read again (leniently: a key given
/// twice is kept twice) to name the field a parse error is about.
#[derive(Debug)]
struct Node {
    line: usize,
    column: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug)]
struct Key {
    line: usize,
    column: usize,
    text: String,
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<Kind>::deserialize(d)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
            kind: spanned.value,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<Kind>::deserialize(d)?;
        Ok(Key {
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
            text: match spanned.value {
                Kind::Scalar(s) => s,
                _ => "?".into(),
            },
        })
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
                Ok(Kind::Scalar(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Scalar("null".into()))
            }
            fn visit_none<E>(self) -> Result<Kind, E> {
                Ok(Kind::Scalar("null".into()))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
                <Kind as serde::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Kind::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Key>()? {
                    entries.push((key, map.next_value::<Node>()?));
                }
                Ok(Kind::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// One step of a field path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if text.is_empty() => text.push_str(k),
            Seg::Key(k) => {
                text.push('.');
                text.push_str(k);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// What an error at `line:col` is about: the deepest value that starts there (a mapping
/// starts at its first key), or else the mapping holding a key written there.
fn locate<'a>(node: &'a Node, at: (usize, usize), path: &mut Vec<Seg>) -> Option<(Vec<Seg>, &'a Node)> {
    let mut best = ((node.line, node.column) == at).then(|| (path.clone(), node));
    match &node.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                let found = locate(item, at, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
        }
        Kind::Map(entries) => {
            for (key, value) in entries {
                path.push(Seg::Key(key.text.clone()));
                let found = locate(value, at, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
                if best.is_none() && (key.line, key.column) == at {
                    best = Some((path.clone(), node));
                }
            }
        }
    }
    best
}

/// The schema of the value at `path`, following `$ref` and the `null` of optional
/// values.
fn schema_at<'a>(root: &'a serde_json::Value, path: &[Seg]) -> Option<&'a serde_json::Value> {
    let mut here = concrete(root, root);
    for seg in path {
        here = match seg {
            Seg::Key(k) => here.get("properties")?.get(k)?,
            Seg::Index(_) => here.get("items")?,
        };
        here = concrete(root, here);
    }
    Some(here)
}

fn concrete<'a>(root: &'a serde_json::Value, mut schema: &'a serde_json::Value) -> &'a serde_json::Value {
    for _ in 0..8 {
        if let Some(reference) = schema.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(target) => schema = target,
                None => return schema,
            }
        } else if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(|a| a.as_array())
        {
            match alternatives
                .iter()
                .find(|a| a.get("type").and_then(|t| t.as_str()) != Some("null"))
            {
                Some(alternative) => schema = alternative,
                None => return schema,
            }
        } else if let Some(types) = schema.get("type").and_then(|t| t.as_array()) {
            // ["integer", "null"]: the caller reads the first non-null type.
            let _ = types;
            return schema;
        } else {
            return schema;
        }
    }
    schema
}

fn type_of(schema: &serde_json::Value) -> Option<&str> {
    match schema.get("type")? {
        serde_json::Value::String(t) => Some(t),
        serde_json::Value::Array(types) => types.iter().filter_map(|t| t.as_str()).find(|t| *t != "null"),
        _ => None,
    }
}

/// What a schema takes, in words.
fn expected_words(schema: &serde_json::Value) -> Option<String> {
    Some(match type_of(schema)? {
        "integer" => {
            let min = schema.get("minimum").and_then(|m| m.as_i64()).unwrap_or(i64::MIN);
            let max = match schema.get("format").and_then(|f| f.as_str()) {
                Some("uint8") => Some(u64::from(u8::MAX)),
                Some("uint16") => Some(u64::from(u16::MAX)),
                Some("uint32") => Some(u64::from(u32::MAX)),
                _ => schema.get("maximum").and_then(|m| m.as_u64()),
            };
            match (min, max) {
                (0, Some(max)) => format!("a whole number from 0 to {max}"),
                _ => "a whole number".into(),
            }
        }
        "string" => "a string".into(),
        "boolean" => "true or false".into(),
        "array" => match schema.get("items").and_then(type_of) {
            Some("string") => "a list of strings".into(),
            _ => "a list".into(),
        },
        "object" => match keys_of(schema) {
            keys if keys.is_empty() => "a mapping".into(),
            keys => format!("a mapping with the keys {}", keys.join(", ")),
        },
        other => other.to_owned(),
    })
}

fn keys_of(schema: &serde_json::Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn found_words(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar(s) => super::names::printable(s),
        Kind::Seq(_) => "a list".into(),
        Kind::Map(_) => "a mapping".into(),
    }
}

/// The closest key to a mistyped one, if close enough to be what was meant.
fn did_you_mean<'a>(typo: &str, keys: &'a [String]) -> Option<&'a str> {
    keys.iter()
        .map(|k| (strsim::jaro_winkler(typo, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.as_str())
}

/// Between the first pair of backticks.
fn quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    Some(rest.split_once('`')?.0)
}

/// A parse error from the YAML reader, at `at` (1-based line and column; `None` when it
/// has no place), said in the policy's terms: the field path, the value found, what the
/// field takes; for an unknown key the keys allowed and the nearest one.
pub fn from_parse_error(file: &Path, text: &str, at: Option<(usize, usize)>, message: &str) -> Diagnostic {
    let mut diagnostic = Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: at.map_or(0, |a| a.0),
        column: at.map_or(0, |a| a.1),
        field: String::new(),
        message: message.to_owned(),
        found: None,
        expected: None,
    };
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: 32, max_aliases: 1_000, max_events: 2_000_000 },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    let Some(at) = at else { return diagnostic };
    // A YAML syntax error: no tree to find the field in; the reader's words stand.
    let Ok(tree) = serde_saphyr::from_str_with_options::<Node>(text, options) else {
        return diagnostic;
    };
    let Some((path, node)) = locate(&tree, at, &mut Vec::new()) else {
        return diagnostic;
    };
    let schema_root = crate::schema::policy_schema();
    let schema = schema_at(&schema_root, &path);
    diagnostic.field = path_text(&path);
    if let Some(rest) = message.strip_prefix("unknown field") {
        let typo = quoted(rest).unwrap_or_default().to_owned();
        let keys = schema.map(keys_of).unwrap_or_default();
        let mut words = format!("unknown key `{}`", super::names::printable(&typo));
        if let Some(near) = did_you_mean(&typo, &keys) {
            words.push_str(&format!("; did you mean `{near}`?"));
        }
        if !keys.is_empty() {
            words.push_str(&format!(" (this section takes: {})", keys.join(", ")));
            diagnostic.expected = Some(format!("one of {}", keys.join(", ")));
        }
        diagnostic.found = Some(typo);
        diagnostic.message = words;
    } else if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key).trim();
        diagnostic.message = format!("`{}` is given twice; give each key once", super::names::printable(key));
    } else if message.starts_with("missing field") {
        let field = quoted(message).unwrap_or_default();
        diagnostic.message = format!("`{field}` is required here");
    } else {
        let found = found_words(node);
        let expected = schema.and_then(expected_words);
        diagnostic.message = match &expected {
            Some(expected) => match node.kind {
                Kind::Scalar(_) => format!("found `{found}`, expected {expected}"),
                _ => format!("found {found}, expected {expected}"),
            },
            None => format!("found `{found}`: {message}"),
        };
        diagnostic.found = Some(found);
        diagnostic.expected = expected;
    }
    diagnostic
}
