//! Positions and typed access to a parsed TOML document: every finding gets the exact line and
//! column of the key or value it is about.

use std::ops::Range;
use std::path::Path;

use toml_edit::{Item, TableLike, Value};

use super::{Diagnostic, Severity, codes};

/// Byte offset → 1-based line and character column.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    pub(crate) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        // Offsets from the parser are char boundaries; be safe with hand-made ones.
        let col = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// One file being linted: its text, and the findings so far.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
    index: LineIndex,
    pub(crate) out: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Ctx {
            file,
            text,
            index: LineIndex::new(text),
            out: Vec::new(),
        }
    }

    /// 1-based line and character column of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        self.index.position(self.text, offset)
    }

    pub(crate) fn push(
        &mut self,
        span: Option<Range<usize>>,
        severity: Severity,
        code: &'static str,
        message: String,
        fix: Option<String>,
    ) {
        let (line, column) = span.map_or((1, 1), |s| self.index.position(self.text, s.start));
        self.out.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            severity,
            code,
            message,
            fix,
        });
    }

    pub(crate) fn error(
        &mut self,
        span: Option<Range<usize>>,
        code: &'static str,
        message: String,
        fix: impl Into<Option<String>>,
    ) {
        self.push(span, Severity::Error, code, message, fix.into());
    }

    pub(crate) fn warn(
        &mut self,
        span: Option<Range<usize>>,
        code: &'static str,
        message: String,
        fix: impl Into<Option<String>>,
    ) {
        self.push(span, Severity::Warning, code, message, fix.into());
    }

    pub(crate) fn info(
        &mut self,
        span: Option<Range<usize>>,
        code: &'static str,
        message: String,
        fix: impl Into<Option<String>>,
    ) {
        self.push(span, Severity::Info, code, message, fix.into());
    }

    /// A value of the wrong TOML type.
    pub(crate) fn wrong_type(&mut self, key: &str, item: &Item, expected: &str) {
        self.error(
            item.span(),
            codes::WRONG_TYPE,
            format!("`{key}` must be {expected}, not {}", type_name(item)),
            format!("write `{key}` as {expected}"),
        );
    }

    /// Parses `text` with spans; a syntax error becomes the one finding, at its exact place.
    pub(crate) fn parse(&mut self) -> Option<toml_edit::Document<&'a str>> {
        match toml_edit::Document::parse(self.text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                let msg = e.message().trim().trim_end_matches('.').to_string();
                self.error(
                    e.span(),
                    codes::TOML_SYNTAX,
                    format!("TOML syntax error: {msg}"),
                    "correct the syntax at this position (diffusion-pipe cannot read the file)"
                        .to_string(),
                );
                None
            }
        }
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "strings",
        Value::Integer(_) => "integers",
        Value::Float(_) => "floats",
        Value::Boolean(_) => "booleans",
        Value::Datetime(_) => "dates",
        Value::Array(_) => "arrays",
        Value::InlineTable(_) => "tables",
    }
}

fn check_array(ctx: &mut Ctx<'_>, v: &Value) {
    match v {
        Value::Array(a) => {
            let mut kinds: Vec<&str> = Vec::new();
            for e in a.iter() {
                let k = value_kind(e);
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
                check_array(ctx, e);
            }
            if kinds.len() > 1 {
                let fix = if kinds.contains(&"integers") && kinds.contains(&"floats") {
                    "write every number the same way (e.g. 1.0 instead of 1)"
                } else {
                    "write every entry the same way"
                };
                ctx.error(
                    v.span(),
                    codes::MIXED_ARRAY,
                    format!(
                        "this array mixes {}; diffusion-pipe's TOML reader (the Python toml \
                         package) rejects it with \"Not a homogeneous array\"",
                        kinds.join(" and ")
                    ),
                    fix.to_string(),
                );
            }
        }
        Value::InlineTable(t) => {
            for (_, e) in t.iter() {
                check_array(ctx, e);
            }
        }
        _ => {}
    }
}

/// Reports every array (at any depth) mixing value types.
pub(crate) fn check_arrays(ctx: &mut Ctx<'_>, item: &Item) {
    match item {
        Item::Value(v) => check_array(ctx, v),
        Item::Table(t) => {
            for (_, i) in t.iter() {
                check_arrays(ctx, i);
            }
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                for (_, i) in t.iter() {
                    check_arrays(ctx, i);
                }
            }
        }
        Item::None => {}
    }
}

/// A human name for a TOML item's type.
pub(crate) fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(Value::String(_)) => "a string",
        Item::Value(Value::Integer(_)) => "an integer",
        Item::Value(Value::Float(_)) => "a float",
        Item::Value(Value::Boolean(_)) => "a boolean",
        Item::Value(Value::Datetime(_)) => "a date",
        Item::Value(Value::Array(_)) => "an array",
        Item::Value(Value::InlineTable(_)) => "an inline table",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

/// The span of a key in a table (or the table's own span when the key is absent).
pub(crate) fn key_span(table: &dyn TableLike, key: &str) -> Option<Range<usize>> {
    table.key(key).and_then(|k| k.span())
}

/// A number as f64 (integer or float).
pub(crate) fn as_number(item: &Item) -> Option<f64> {
    match item {
        Item::Value(Value::Integer(i)) => Some(*i.value() as f64),
        Item::Value(Value::Float(f)) => Some(*f.value()),
        _ => None,
    }
}

pub(crate) fn value_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i.value() as f64),
        Value::Float(f) => Some(*f.value()),
        _ => None,
    }
}

/// An integer, or a float with an integral value (Python accepts both).
pub(crate) fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i.value()),
        Value::Float(f) if f.value().fract() == 0.0 && f.value().abs() < 9.0e15 => {
            Some(*f.value() as i64)
        }
        _ => None,
    }
}

/// Typed getters that report a wrong type themselves and return None then.
pub(crate) struct Get<'c, 'a, 'd> {
    pub(crate) ctx: &'c mut Ctx<'a>,
    pub(crate) table: &'d dyn TableLike,
    /// Prefix for messages, e.g. `[model] `.
    pub(crate) section: &'static str,
}

impl<'d> Get<'_, '_, 'd> {
    pub(crate) fn str(&mut self, key: &str) -> Option<(&'d str, Option<Range<usize>>)> {
        let item = self.table.get(key)?;
        match item.as_str() {
            Some(s) => Some((s, item.span())),
            None => {
                let k = format!("{}{key}", self.section);
                self.ctx.wrong_type(&k, item, "a string");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, key: &str) -> Option<(bool, Option<Range<usize>>)> {
        let item = self.table.get(key)?;
        match item.as_bool() {
            Some(b) => Some((b, item.span())),
            None => {
                let k = format!("{}{key}", self.section);
                let what = if item.as_str().is_some() {
                    "a boolean (true or false, without quotes)"
                } else {
                    "a boolean (true or false)"
                };
                self.ctx.wrong_type(&k, item, what);
                None
            }
        }
    }

    /// A number at least `min` (integer or float).
    pub(crate) fn number(&mut self, key: &str, min: f64) -> Option<(f64, Option<Range<usize>>)> {
        let item = self.table.get(key)?;
        match as_number(item) {
            Some(n) if n >= min || n.is_nan() => Some((n, item.span())),
            Some(n) => {
                self.ctx.error(
                    item.span(),
                    codes::INVALID_VALUE,
                    format!("`{}{key}` is {n}; it must be at least {min}", self.section),
                    format!("set `{key}` to {min} or more"),
                );
                None
            }
            None => {
                let k = format!("{}{key}", self.section);
                self.ctx.wrong_type(&k, item, "a number");
                None
            }
        }
    }

    /// An integer at least `min`.
    pub(crate) fn int(&mut self, key: &str, min: i64) -> Option<(i64, Option<Range<usize>>)> {
        let item = self.table.get(key)?;
        let Item::Value(v) = item else {
            let k = format!("{}{key}", self.section);
            self.ctx.wrong_type(&k, item, "an integer");
            return None;
        };
        match value_int(v) {
            Some(n) if n >= min => Some((n, item.span())),
            Some(n) => {
                self.ctx.error(
                    item.span(),
                    codes::INVALID_VALUE,
                    format!("`{}{key}` is {n}; it must be at least {min}", self.section),
                    format!("set `{key}` to {min} or more"),
                );
                None
            }
            None if value_number(v).is_some() => {
                self.ctx.error(
                    item.span(),
                    codes::INVALID_VALUE,
                    format!("`{}{key}` must be a whole number", self.section),
                    format!("write `{key}` as an integer"),
                );
                None
            }
            None => {
                let k = format!("{}{key}", self.section);
                self.ctx.wrong_type(&k, item, "an integer");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let t = "ab\ncdé = 1\n\nx";
        let ix = LineIndex::new(t);
        assert_eq!(ix.position(t, 0), (1, 1));
        assert_eq!(ix.position(t, 1), (1, 2));
        assert_eq!(ix.position(t, 3), (2, 1));
        // after "cdé" (é is two bytes): column 4
        assert_eq!(ix.position(t, 3 + 4), (2, 4));
        assert_eq!(ix.position(t, 12), (3, 1));
        assert_eq!(ix.position(t, 13), (4, 1));
        assert_eq!(ix.position(t, t.len()), (4, 2));
    }
}
