//! One text buffer of the Config tab. ratatui-textarea does the editing (cursor moves, undo and
//! redo, selection, cut / copy / paste); dpgui draws the text itself (`views::config`) because
//! the widget has no hook to colour TOML or mark the lines a diagnostic points at. This module
//! also holds the small TOML lexer the view colours with.

use std::sync::atomic::{AtomicUsize, Ordering};

use ratatui_textarea::{CursorMove, TextArea};

/// How many edits undo can walk back.
const HISTORY: usize = 1000;

/// Where the view was last drawn: the first line and column shown and the rows available. The
/// view writes it while drawing (it only reads the state otherwise); keys read it to page and
/// to keep the cursor where the user looks.
#[derive(Debug, Default)]
pub struct ViewPos {
    pub top: AtomicUsize,
    pub left: AtomicUsize,
    pub height: AtomicUsize,
}

impl ViewPos {
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.top.load(Ordering::Relaxed),
            self.left.load(Ordering::Relaxed),
            self.height.load(Ordering::Relaxed),
        )
    }
    pub fn set(&self, top: usize, left: usize, height: usize) {
        self.top.store(top, Ordering::Relaxed);
        self.left.store(left, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
    }
}

impl Clone for ViewPos {
    fn clone(&self) -> Self {
        let (t, l, h) = self.get();
        let v = ViewPos::default();
        v.set(t, l, h);
        v
    }
}

/// The scroll position is a drawing detail, not part of what a buffer holds.
impl PartialEq for ViewPos {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A text buffer: the lines, the cursor, the edit history.
#[derive(Debug, Clone)]
pub struct Editor {
    ta: TextArea<'static>,
    /// The file ended with a newline (kept on save).
    trailing_newline: bool,
    /// The file used CRLF line ends (kept on save).
    crlf: bool,
    /// The file was empty: an empty buffer saves as an empty file, not as a newline.
    empty_file: bool,
    /// Hashes of the texts halfway through a replacement (lines deleted, new ones not yet
    /// inserted): undo and redo go through them in one step.
    halfway: Vec<u64>,
    pub view: ViewPos,
}

impl PartialEq for Editor {
    fn eq(&self, o: &Self) -> bool {
        self.ta.lines() == o.ta.lines()
            && self.ta.cursor() == o.ta.cursor()
            && self.ta.selection_range() == o.ta.selection_range()
            && self.trailing_newline == o.trailing_newline
            && self.crlf == o.crlf
    }
}

impl Default for Editor {
    fn default() -> Self {
        Editor::from_text("")
    }
}

/// `text` as lines, without their line ends.
fn split_lines(text: &str) -> Vec<String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect()
}

impl Editor {
    pub fn from_text(text: &str) -> Self {
        let mut ta = TextArea::new(split_lines(text));
        ta.set_max_histories(HISTORY);
        Editor {
            ta,
            trailing_newline: text.ends_with('\n') || text.is_empty(),
            crlf: text.contains("\r\n"),
            empty_file: text.is_empty(),
            halfway: Vec::new(),
            view: ViewPos::default(),
        }
    }

    fn lines_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.ta.lines().hash(&mut h);
        h.finish()
    }

    /// Undoes the last edit (a replacement as a whole).
    pub fn undo(&mut self) -> bool {
        let done = self.ta.undo();
        if done && self.halfway.contains(&self.lines_hash()) {
            self.ta.undo();
        }
        done
    }

    pub fn redo(&mut self) -> bool {
        let done = self.ta.redo();
        if done && self.halfway.contains(&self.lines_hash()) {
            self.ta.redo();
        }
        done
    }

    /// The text as it would be saved.
    pub fn text(&self) -> String {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        if self.empty_file && self.ta.lines() == [""] {
            return String::new();
        }
        let mut t = self.ta.lines().join(eol);
        if self.trailing_newline {
            t.push_str(eol);
        }
        t
    }

    pub fn lines(&self) -> &[String] {
        self.ta.lines()
    }

    /// (row, column in chars), 0-based.
    pub fn cursor(&self) -> (usize, usize) {
        let c = self.ta.cursor();
        (c.0, c.1)
    }

    /// The display column of the cursor (tabs and wide characters counted).
    pub fn cursor_display_col(&self) -> usize {
        self.ta.screen_cursor().col
    }

    pub fn selection(&self) -> Option<((usize, usize), (usize, usize))> {
        self.ta.selection_range()
    }

    pub fn textarea(&mut self) -> &mut TextArea<'static> {
        &mut self.ta
    }

    /// For drawing with the widget's own renderer (the caption editor).
    pub fn widget(&self) -> &TextArea<'static> {
        &self.ta
    }

    /// The (row, char column) drawn at display column `col` of `row` (clamped to the text).
    pub fn position_at(&self, row: usize, col: usize) -> (usize, usize) {
        let c = self.ta.screen_to_data(row, col);
        (c.0, c.1)
    }

    /// Moves the cursor (clamped to the text), dropping any selection.
    pub fn jump(&mut self, row: usize, col: usize) {
        self.ta.cancel_selection();
        let row = row.min(self.ta.lines().len().saturating_sub(1));
        let col = col.min(self.ta.lines()[row].chars().count());
        self.ta.move_cursor(CursorMove::Jump(
            row.min(u16::MAX as usize) as u16,
            col.min(u16::MAX as usize) as u16,
        ));
    }

    /// Moves the cursor `delta` lines (a page), keeping the column where the line allows.
    pub fn move_lines(&mut self, delta: isize) {
        let (row, col) = self.cursor();
        let last = self.ta.lines().len().saturating_sub(1) as isize;
        let to = (row as isize + delta).clamp(0, last) as usize;
        self.jump(to, col);
    }

    /// Replaces the text with `new` as one edit that undo takes back: only the lines that
    /// differ are replaced, and the cursor stays on its line.
    pub fn replace_text(&mut self, new: &str) -> bool {
        let old = self.ta.lines().to_vec();
        let new_lines = split_lines(new);
        if old == new_lines {
            return false;
        }
        let (row, col) = self.cursor();
        let prefix = old
            .iter()
            .zip(&new_lines)
            .take_while(|(a, b)| a == b)
            .count();
        let max_suffix = old.len().min(new_lines.len()) - prefix;
        let suffix = old
            .iter()
            .rev()
            .zip(new_lines.iter().rev())
            .take(max_suffix)
            .take_while(|(a, b)| a == b)
            .count();
        let old_mid = &old[prefix..old.len() - suffix];
        let new_mid = &new_lines[prefix..new_lines.len() - suffix];
        self.ta.cancel_selection();
        if old_mid.is_empty() {
            // Pure insertion of whole lines before line `prefix`.
            if prefix < old.len() {
                self.jump(prefix, 0);
                self.ta.insert_str(new_mid.join("\n") + "\n");
            } else {
                let end = old[prefix - 1].chars().count();
                self.jump(prefix - 1, end);
                self.ta.insert_str("\n".to_string() + &new_mid.join("\n"));
            }
        } else {
            // Select the differing lines (from the start of the first to the end of the last)
            // and type the new ones over them.
            let last = prefix + old_mid.len() - 1;
            if new_mid.is_empty() {
                // Whole lines go: take their line end too.
                if last + 1 < old.len() {
                    self.jump(prefix, 0);
                    self.ta.start_selection();
                    self.ta.move_cursor(CursorMove::Jump(
                        (last + 1).min(u16::MAX as usize) as u16,
                        0,
                    ));
                } else {
                    let end = old[prefix - 1].chars().count();
                    self.jump(prefix - 1, end);
                    self.ta.start_selection();
                    let last_len = old[last].chars().count();
                    self.ta.move_cursor(CursorMove::Jump(
                        last.min(u16::MAX as usize) as u16,
                        last_len.min(u16::MAX as usize) as u16,
                    ));
                }
                self.ta.delete_str(0);
            } else {
                self.jump(prefix, 0);
                self.ta.start_selection();
                let last_len = old[last].chars().count();
                self.ta.move_cursor(CursorMove::Jump(
                    last.min(u16::MAX as usize) as u16,
                    last_len.min(u16::MAX as usize) as u16,
                ));
                // Two edits (the old lines go, the new ones come): remember the state between.
                self.ta.delete_str(0);
                if self.halfway.len() >= 64 {
                    self.halfway.remove(0);
                }
                self.halfway.push(self.lines_hash());
                self.ta.insert_str(new_mid.join("\n"));
            }
        }
        self.jump(row, col);
        true
    }

    /// Finds `query` (case-insensitive) after the cursor, or before the selection when going
    /// back, wrapping around the end; selects the match. Returns whether there was one.
    pub fn find(&mut self, query: &str, forward: bool) -> bool {
        if query.is_empty() {
            return false;
        }
        let q: Vec<char> = query.to_lowercase().chars().collect();
        let lines: Vec<Vec<char>> = self
            .ta
            .lines()
            .iter()
            .map(|l| l.to_lowercase().chars().collect())
            .collect();
        // Lowercasing can change the length of a few characters; fall back to no match there.
        if lines
            .iter()
            .zip(self.ta.lines())
            .any(|(a, b)| a.len() != b.chars().count())
        {
            return false;
        }
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for (r, l) in lines.iter().enumerate() {
            if l.len() >= q.len() {
                for c in 0..=l.len() - q.len() {
                    if l[c..c + q.len()] == q[..] {
                        hits.push((r, c));
                    }
                }
            }
        }
        if hits.is_empty() {
            return false;
        }
        let here = match self.ta.selection_range() {
            Some((start, _)) if !forward => start,
            _ => self.cursor(),
        };
        let hit = if forward {
            hits.iter().find(|h| **h >= here).unwrap_or(&hits[0])
        } else {
            hits.iter()
                .rev()
                .find(|h| **h < here)
                .unwrap_or(&hits[hits.len() - 1])
        };
        let (r, c) = *hit;
        self.jump(r, c);
        self.ta.start_selection();
        self.ta.move_cursor(CursorMove::Jump(
            r.min(u16::MAX as usize) as u16,
            (c + q.len()).min(u16::MAX as usize) as u16,
        ));
        true
    }
}

// ---------------------------------------------------------------------------------------------
// TOML lexing for colours

/// What a character of a TOML line is, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Plain,
    Comment,
    Header,
    Key,
    Str,
    Num,
    Bool,
    Punct,
}

/// What carries over from one line to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LexState {
    /// Inside a multi-line string opened with `"""` (true) or `'''` (false).
    pub multi: Option<bool>,
    /// Open `[` / `{` of values (a multi-line array): `[` at a line start is no header then.
    pub depth: u16,
}

fn is_bare(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '+' | '.' | ':')
}

/// The end (exclusive) of a string starting at `i` with quote `q`, on this line.
fn string_end(c: &[char], i: usize, q: char) -> Option<usize> {
    let mut j = i + 1;
    while j < c.len() {
        if q == '"' && c[j] == '\\' {
            j += 2;
            continue;
        }
        if c[j] == q {
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// The end (exclusive) of a multi-line string's closing delimiter, searching from `i`.
fn multi_end(c: &[char], i: usize, basic: bool) -> Option<usize> {
    let q = if basic { '"' } else { '\'' };
    let mut j = i;
    while j + 3 <= c.len() {
        if basic && c[j] == '\\' {
            j += 2;
            continue;
        }
        if c[j] == q && c[j + 1] == q && c[j + 2] == q {
            // Up to two more quotes belong to the content.
            let mut end = j + 3;
            while end < c.len() && c[end] == q && end < j + 5 {
                end += 1;
            }
            return Some(end);
        }
        j += 1;
    }
    None
}

/// The class of each character of `line` (by char index) and the state for the next line.
pub fn classify(line: &str, state: LexState) -> (Vec<Tok>, LexState) {
    let c: Vec<char> = line.chars().collect();
    let n = c.len();
    let mut out = vec![Tok::Plain; n];
    let mut st = state;
    let mut i = 0;
    if let Some(basic) = st.multi {
        match multi_end(&c, 0, basic) {
            Some(end) => {
                out[..end].fill(Tok::Str);
                i = end;
                st.multi = None;
            }
            None => {
                out.fill(Tok::Str);
                return (out, st);
            }
        }
    }
    let mut first = i == 0;
    while i < n {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '#' {
            out[i..].fill(Tok::Comment);
            break;
        }
        if first && st.depth == 0 && ch == '[' {
            // A table header: to its closing bracket(s), quotes respected.
            let double = c.get(i + 1) == Some(&'[');
            let mut j = i + if double { 2 } else { 1 };
            let mut end = n;
            while j < n {
                if c[j] == '"' || c[j] == '\'' {
                    j = string_end(&c, j, c[j]).unwrap_or(n);
                    continue;
                }
                if c[j] == ']' {
                    end = if double && c.get(j + 1) == Some(&']') {
                        j + 2
                    } else {
                        j + 1
                    };
                    break;
                }
                j += 1;
            }
            out[i..end].fill(Tok::Header);
            i = end;
            first = false;
            continue;
        }
        first = false;
        if ch == '"' || ch == '\'' {
            let triple = c.get(i + 1) == Some(&ch) && c.get(i + 2) == Some(&ch);
            if triple {
                match multi_end(&c, i + 3, ch == '"') {
                    Some(end) => {
                        out[i..end].fill(Tok::Str);
                        i = end;
                    }
                    None => {
                        out[i..].fill(Tok::Str);
                        st.multi = Some(ch == '"');
                        break;
                    }
                }
                continue;
            }
            let end = string_end(&c, i, ch).unwrap_or(n);
            let tok = if followed_by_eq(&c, end) {
                Tok::Key
            } else {
                Tok::Str
            };
            out[i..end].fill(tok);
            i = end;
            continue;
        }
        if is_bare(ch) {
            let start = i;
            while i < n && is_bare(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let tok = if followed_by_eq(&c, i) {
                Tok::Key
            } else if word == "true" || word == "false" {
                Tok::Bool
            } else if word.starts_with(|x: char| x.is_ascii_digit() || x == '+' || x == '-')
                || matches!(word.as_str(), "inf" | "nan")
            {
                Tok::Num
            } else {
                Tok::Plain
            };
            out[start..i].fill(tok);
            continue;
        }
        match ch {
            '[' | '{' => st.depth = st.depth.saturating_add(1),
            ']' | '}' => st.depth = st.depth.saturating_sub(1),
            _ => {}
        }
        out[i] = Tok::Punct;
        i += 1;
    }
    (out, st)
}

fn followed_by_eq(c: &[char], from: usize) -> bool {
    c[from.min(c.len())..]
        .iter()
        .find(|x| !x.is_whitespace())
        .is_some_and(|x| *x == '=')
}

/// The lexer state at the start of each of the first `upto` lines.
pub fn states_until(lines: &[String], upto: usize) -> LexState {
    let mut st = LexState::default();
    for l in lines.iter().take(upto) {
        st = classify(l, st).1;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn text_round_trips_line_ends() {
        for t in [
            "a = 1\nb = 2\n",
            "a = 1\r\nb = 2\r\n",
            "no newline",
            "",
            "\n",
            "\n\n",
        ] {
            assert_eq!(Editor::from_text(t).text(), t, "{t:?}");
        }
    }

    #[test]
    fn replace_text_is_one_undoable_edit_and_keeps_the_cursor_line() {
        let before = "# top\na = 1\nb = 'x'  # keep\nc = 3\n";
        let mut e = Editor::from_text(before);
        e.jump(2, 3);
        assert!(e.replace_text("# top\na = 1\nb = '/new/path'  # keep\nc = 3\n"));
        assert_eq!(e.text(), "# top\na = 1\nb = '/new/path'  # keep\nc = 3\n");
        assert_eq!(e.cursor(), (2, 3));
        e.undo();
        assert_eq!(e.text(), before, "one undo");
        e.redo();
        assert!(e.text().contains("/new/path"), "one redo");
        // Insertions and deletions of whole lines, at the ends too.
        for (a, b) in [
            ("x\ny\n", "x\nnew\ny\n"),
            ("x\ny\n", "x\ny\nz\n"),
            ("x\nnew\ny\n", "x\ny\n"),
            ("x\ny\nz\n", "x\ny\n"),
            ("x\ny\n", "w\nx\ny\n"),
        ] {
            let mut e = Editor::from_text(a);
            e.replace_text(b);
            assert_eq!(e.text(), b, "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn find_selects_matches_and_wraps() {
        let mut e = Editor::from_text("alpha\nBeta alpha\n");
        assert!(e.find("ALPHA", true));
        assert_eq!(e.selection(), Some(((0, 0), (0, 5))));
        assert!(e.find("alpha", true));
        assert_eq!(e.selection(), Some(((1, 5), (1, 10))));
        assert!(e.find("alpha", true), "wraps to the top");
        assert_eq!(e.cursor(), (0, 5));
        assert!(e.find("alpha", false));
        assert_eq!(e.selection(), Some(((1, 5), (1, 10))));
        assert!(!e.find("gamma", true));
        // Typing over a match replaces it.
        e.textarea()
            .input(KeyEvent::new(KeyCode::Char('Z'), KeyModifiers::SHIFT));
        assert_eq!(e.text(), "alpha\nBeta Z\n");
    }

    #[test]
    fn lexer_classes() {
        let (t, st) = classify("[model]  # the model", LexState::default());
        assert_eq!(t[0], Tok::Header);
        assert_eq!(t[6], Tok::Header);
        assert_eq!(t[9], Tok::Comment);
        assert_eq!(st, LexState::default());
        let (t, _) = classify("dtype = 'bfloat16' # x", LexState::default());
        assert_eq!(&t[..5], &[Tok::Key; 5]);
        assert_eq!(t[6], Tok::Punct);
        assert_eq!(t[8], Tok::Str);
        assert_eq!(t[19], Tok::Comment);
        let (t, _) = classify("lr = 2e-5", LexState::default());
        assert_eq!(t[5], Tok::Num);
        let (t, _) = classify("\"quoted key\" = true", LexState::default());
        assert_eq!(t[0], Tok::Key);
        assert_eq!(t[15], Tok::Bool);
        // A multi-line array: its inner `[` is no header.
        let (_, st) = classify("ar = [", LexState::default());
        assert_eq!(st.depth, 1);
        let (t, st) = classify("  [512, 512],", st);
        assert_eq!(t[2], Tok::Punct);
        assert_eq!(t[3], Tok::Num);
        let (_, st) = classify("]", st);
        assert_eq!(st.depth, 0);
        // Multi-line strings.
        let (t, st) = classify("s = '''one", LexState::default());
        assert_eq!(st.multi, Some(false));
        assert_eq!(t[4], Tok::Str);
        let (t, st) = classify("two''' # c", st);
        assert_eq!(st.multi, None);
        assert_eq!(t[0], Tok::Str);
        assert_eq!(t[7], Tok::Comment);
        let (t, _) = classify("[[directory]]", LexState::default());
        assert!(t.iter().all(|x| *x == Tok::Header));
    }
}
