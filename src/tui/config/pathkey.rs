//! The path helper's TOML side: which key the cursor is on (found through toml_edit's spans,
//! so tables, arrays of tables, dotted keys and inline tables all work), what that key must
//! point at, and writing a new value with toml_edit so every comment and all formatting stay.

use std::ops::Range;

use toml_edit::{Item, Table, Value};

use crate::trainer::lint::{self, Expect};

/// One step from the document root to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key-value the cursor is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathLoc {
    pub segs: Vec<Seg>,
    /// The current value when it is a string.
    pub value: Option<String>,
    /// What the key must point at, when it is a path key.
    pub expect: Option<Expect>,
    pub note: String,
}

impl PathLoc {
    /// The key as a reader writes it: `model.checkpoint_path`, `directory[0].path`.
    pub fn name(&self) -> String {
        let mut s = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    pub fn key(&self) -> &str {
        self.segs
            .iter()
            .rev()
            .find_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .unwrap_or("")
    }
}

struct Walk {
    row_span: Range<usize>,
    cursor: usize,
    segs: Vec<Seg>,
    /// (key start, segments, string value)
    found: Vec<(usize, Vec<Seg>, Option<String>)>,
}

impl Walk {
    fn table(&mut self, t: &Table) {
        for (k, item) in t.iter() {
            let span = t.key(k).and_then(|k| k.span());
            self.segs.push(Seg::Key(k.to_string()));
            self.item(item, span);
            self.segs.pop();
        }
    }

    fn item(&mut self, item: &Item, key_span: Option<Range<usize>>) {
        match item {
            Item::Value(v) => self.value(v, key_span),
            Item::Table(t) => self.table(t),
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    self.segs.push(Seg::Index(i));
                    self.table(t);
                    self.segs.pop();
                }
            }
            Item::None => {}
        }
    }

    fn value(&mut self, v: &Value, key_span: Option<Range<usize>>) {
        match v {
            Value::InlineTable(t) => {
                for (k, v) in t.iter() {
                    let span = t.key(k).and_then(|k| k.span());
                    self.segs.push(Seg::Key(k.to_string()));
                    self.value(v, span);
                    self.segs.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    if matches!(v, Value::InlineTable(_) | Value::Array(_)) {
                        self.segs.push(Seg::Index(i));
                        self.value(v, None);
                        self.segs.pop();
                    }
                }
            }
            _ => {
                if let Some(span) = key_span
                    && self.row_span.contains(&span.start)
                {
                    self.found.push((
                        span.start,
                        self.segs.clone(),
                        v.as_str().map(str::to_string),
                    ));
                }
            }
        }
    }
}

/// Byte offset of (row, col in chars) in `text`, and the byte range of that row.
fn offsets(text: &str, row: usize, col: usize) -> Option<(usize, Range<usize>)> {
    let mut start = 0;
    for (i, line) in text.split('\n').enumerate() {
        if i == row {
            let at = line.char_indices().nth(col).map_or(line.len(), |(b, _)| b);
            return Some((start + at, start..start + line.len() + 1));
        }
        start += line.len() + 1;
    }
    None
}

fn key_path(segs: &[Seg]) -> Vec<&str> {
    segs.iter()
        .map(|s| match s {
            Seg::Key(k) => k.as_str(),
            Seg::Index(_) => "#",
        })
        .collect()
}

/// What the key at `segs` must point at, and what it is for.
fn expect_for(segs: &[Seg], model_type: Option<&str>) -> Option<(Expect, String)> {
    let p = key_path(segs);
    let known = |e, n: &str| Some((e, n.to_string()));
    match p.as_slice() {
        ["output_dir"] => known(Expect::Dir, "where diffusion-pipe writes its run folders"),
        ["dataset"] => known(Expect::File, "the dataset config (TOML)"),
        ["eval_datasets", "#", "config"] => known(Expect::File, "an eval dataset config (TOML)"),
        ["adapter", "init_from_existing"] => known(
            Expect::Dir,
            "a folder holding exactly one .safetensors LoRA to start from",
        ),
        ["model", lint::TEXT_ENCODERS, "#", "path"] => known(Expect::File, "a text encoder file"),
        ["model", key] => {
            let pk = lint::path_key(model_type?, key)?;
            Some((pk.expect, pk.note.to_string()))
        }
        ["directory", "#", "path"] => {
            known(Expect::Dir, "a folder of images / videos and captions")
        }
        ["directory", "#", "mask_path"] => known(Expect::Dir, "a folder of masks"),
        ["directory", "#", "control_path"] => {
            known(Expect::Dir, "a folder of control images (edit models)")
        }
        ["directory", "#", "default_mask_file"] => known(Expect::File, "a mask image"),
        [.., last] if last.ends_with("_path") || *last == "path" => {
            known(Expect::FileOrDir, "a path")
        }
        _ => None,
    }
}

/// The key-value at (row, col) of `text`: the last key on that line that starts at or before
/// the cursor (or the first on the line).
pub fn locate(text: &str, row: usize, col: usize) -> Result<PathLoc, String> {
    let doc = toml_edit::Document::parse(text.to_string()).map_err(|_| {
        "fix the TOML syntax first (the path helper needs a file it can parse)".to_string()
    })?;
    let (cursor, row_span) = offsets(text, row, col).ok_or("no such line")?;
    let mut w = Walk {
        row_span,
        cursor,
        segs: Vec::new(),
        found: Vec::new(),
    };
    w.table(doc.as_table());
    let pick = w
        .found
        .iter()
        .filter(|f| f.0 <= w.cursor)
        .max_by_key(|f| f.0)
        .or_else(|| w.found.iter().min_by_key(|f| f.0))
        .ok_or("put the cursor on a `key = '...'` line")?;
    let model_type = doc
        .get("model")
        .and_then(|m| m.get("type"))
        .and_then(|t| t.as_str());
    let (expect, note) = match expect_for(&pick.1, model_type) {
        Some((e, n)) => (Some(e), n),
        None => (None, String::new()),
    };
    Ok(PathLoc {
        segs: pick.1.clone(),
        value: pick.2.clone(),
        expect,
        note,
    })
}

/// `text` with the string value at `loc` set to `value`: the value's own spacing and trailing
/// comment, and everything else in the file, stay as they were. A literal string ('...')
/// stays literal where the value allows.
pub fn set_string(text: &str, loc: &PathLoc, value: &str) -> Result<String, String> {
    let doc = toml_edit::Document::parse(text.to_string())
        .map_err(|_| "fix the TOML syntax first".to_string())?;
    let mut doc = doc.into_mut();
    if doc.to_string() != text {
        return Err("this file cannot be edited without reformatting it; type the path".into());
    }
    let mut item: &mut Item = doc.as_item_mut();
    for seg in &loc.segs {
        let next = match seg {
            Seg::Key(k) => item.get_mut(k.as_str()),
            Seg::Index(i) => item.get_mut(*i),
        };
        item = next.ok_or_else(|| format!("`{}` is no longer in the file", loc.name()))?;
    }
    let Item::Value(old) = item else {
        return Err(format!("`{}` is not a value", loc.name()));
    };
    let literal = match old {
        Value::String(f) => f
            .as_repr()
            .and_then(|r| r.as_raw().as_str())
            .is_some_and(|r| r.starts_with('\'') && !r.starts_with("'''")),
        _ => true,
    };
    let mut new = if literal && !value.contains('\'') && !value.chars().any(char::is_control) {
        format!("'{value}'")
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(value))
    } else {
        Value::from(value)
    };
    *new.decor_mut() = old.decor().clone();
    *old = new;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "# My run\noutput_dir = '/out'   # runs go here\ndataset = \"ds.toml\"\n\n[model]\ntype = 'sdxl'\n# the checkpoint:\ncheckpoint_path = ''  # fill me\ndtype = 'bfloat16'\n";

    #[test]
    fn locates_keys_and_what_they_expect() {
        let l = locate(MAIN, 7, 3).unwrap();
        assert_eq!(l.name(), "model.checkpoint_path");
        assert_eq!(l.value.as_deref(), Some(""));
        assert_eq!(l.expect, Some(Expect::File));
        assert!(l.note.contains("safetensors"));
        let l = locate(MAIN, 1, 0).unwrap();
        assert_eq!(l.expect, Some(Expect::Dir));
        assert_eq!(locate(MAIN, 8, 0).unwrap().expect, None, "dtype is no path");
        assert!(locate(MAIN, 6, 0).is_err(), "a comment line");
        let ds = "resolutions = [512]\n[[directory]]\npath = '/a'\n[[directory]]\npath = '/b'\nnum_repeats = 2\n";
        let l = locate(ds, 4, 2).unwrap();
        assert_eq!(
            l.segs,
            vec![
                Seg::Key("directory".into()),
                Seg::Index(1),
                Seg::Key("path".into())
            ]
        );
        assert_eq!(l.expect, Some(Expect::Dir));
        let te = "[model]\ntype = 'z_image'\ntext_encoders = [{path = '', type = 'qwen3'}]\n";
        let l = locate(te, 2, 20).unwrap();
        assert_eq!(l.name(), "model.text_encoders[0].path");
        assert_eq!(l.expect, Some(Expect::File));
        assert!(locate("a = = 1", 0, 0).unwrap_err().contains("syntax"));
    }

    #[test]
    fn set_string_keeps_comments_and_formatting() {
        let l = locate(MAIN, 7, 0).unwrap();
        let out = set_string(MAIN, &l, "/models/sdxl.safetensors").unwrap();
        assert_eq!(
            out,
            MAIN.replace(
                "checkpoint_path = ''  # fill me",
                "checkpoint_path = '/models/sdxl.safetensors'  # fill me"
            )
        );
        // A basic string stays basic; a value with a quote is escaped properly.
        let l = locate(MAIN, 2, 0).unwrap();
        let out = set_string(MAIN, &l, "/data/it's.toml").unwrap();
        assert!(out.contains("dataset = \"/data/it's.toml\"\n"), "{out}");
        let ds = "[[directory]]\npath = '/a' # first\n[[directory]]\npath = '/b'\n";
        let l = locate(ds, 3, 0).unwrap();
        assert_eq!(
            set_string(ds, &l, "/c").unwrap(),
            "[[directory]]\npath = '/a' # first\n[[directory]]\npath = '/c'\n"
        );
    }
}
