//! Following growing log files with bounded memory (`tail -F` for the Jobs tab).
//!
//! One [`Tailer`] per rank log (up to 8) plus the launcher log. Each poll costs one `stat` of the
//! path and, when the file grew, positional reads of large chunks; per byte there is only
//! `memchr`. Memory per pane is bounded however long training runs: the [`LogBuffer`] ring keeps
//! at most `max_lines` lines and `max_bytes` of text, a single line never holds more than
//! `max_line_bytes` (+ a UTF-8 tail) however long it is in the file, and one poll reads at most
//! [`READ_CAP`] so a multi-GB backlog is consumed over several polls instead of stalling the UI.
//!
//! Line semantics follow what a terminal shows: `\n` or `\r\n` end a line; a bare `\r` (tqdm
//! redrawing its bar) overwrites the current line, so only the text after the last `\r` is kept.
//! Invalid UTF-8 is decoded lossily, ANSI escape sequences are removed.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use memchr::{memchr, memchr2};

/// Most bytes one poll reads; the rest waits for the next poll so the UI never stalls.
pub const READ_CAP: u64 = 64 << 20;
/// Size of one positional read. Big enough that a rank log growing at 20,000 lines/s needs one
/// read per poll, small enough that nine panes' buffers stay a few MiB.
const READ_CHUNK: usize = 256 << 10;
/// Below this much dead text the ring does not bother compacting its arena.
const COMPACT_MIN: usize = 64 << 10;

pub const MARK_REPLACED: &str = "── file replaced ──";
pub const MARK_TRUNCATED: &str = "── file truncated ──";

#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Lines kept per pane.
    pub max_lines: usize,
    /// Longer lines are cut, keeping the start, with a marker " … [+N bytes]".
    pub max_line_bytes: usize,
    /// Opening a bigger file starts this many bytes before its end (at the next line start).
    pub initial_bytes: u64,
    /// Text kept per pane, whatever the line count: bounds memory when lines are long.
    pub max_bytes: usize,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            max_lines: 5000,
            max_line_bytes: 16 << 10,
            initial_bytes: 4 << 20,
            max_bytes: 4 << 20,
        }
    }
}

/// A bounded buffer of the most recent lines of one file.
///
/// All kept lines live in one `String` arena (no allocation per line); `ends` holds each line's
/// end as an absolute offset. Evicted lines leave dead text at the arena's front, removed in one
/// move once it outweighs half the live text, so appending stays amortised O(1) per byte.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    text: String,
    /// Absolute offset of `text[0]`.
    base: u64,
    /// Absolute offset where the oldest kept line starts.
    head: u64,
    ends: VecDeque<u64>,
    max_lines: usize,
    max_bytes: usize,
    total: u64,
    dropped: u64,
    partial: Option<String>,
}

impl LogBuffer {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        LogBuffer {
            text: String::new(),
            base: 0,
            head: 0,
            ends: VecDeque::new(),
            max_lines: max_lines.max(1),
            max_bytes,
            total: 0,
            dropped: 0,
            partial: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Line `i`, 0 being the oldest kept.
    pub fn line(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { self.head } else { self.ends[i - 1] };
        Some(&self.text[(start - self.base) as usize..(end - self.base) as usize])
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        (0..self.len()).map(|i| self.line(i).unwrap_or_default())
    }

    /// Lines ever appended, markers included; the oldest kept line is number
    /// `total_lines() - len()` (0-based).
    pub fn total_lines(&self) -> u64 {
        self.total
    }

    /// Lines evicted from the ring.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The current unterminated line (e.g. a tqdm bar being redrawn), shown below the last line.
    pub fn partial(&self) -> Option<&str> {
        self.partial.as_deref()
    }

    pub fn set_partial(&mut self, p: Option<&str>) {
        match (p, &mut self.partial) {
            (Some(p), Some(s)) => {
                s.clear();
                s.push_str(p);
            }
            (Some(p), slot) => *slot = Some(p.to_owned()),
            (None, slot) => *slot = None,
        }
    }

    /// Case-insensitive substring search over kept lines, starting at `from` (inclusive) and
    /// wrapping around. A `from` past the end starts at the first line forwards, the last line
    /// backwards, so "previous from 0" is `from = usize::MAX`.
    pub fn search(&self, needle: &str, from: usize, backwards: bool) -> Option<usize> {
        let n = self.len();
        if needle.is_empty() || n == 0 {
            return None;
        }
        let start = match (from < n, backwards) {
            (true, _) => from,
            (false, false) => 0,
            (false, true) => n - 1,
        };
        let m = Matcher::new(needle);
        (0..n)
            .map(|k| {
                if backwards {
                    (start + n - k) % n
                } else {
                    (start + k) % n
                }
            })
            .find(|&i| m.is_in(self.line(i).unwrap_or_default()))
    }

    /// Approximate heap memory held.
    pub fn bytes(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * size_of::<u64>()
            + self.partial.as_ref().map_or(0, String::capacity)
    }

    /// Appends one complete line, evicting the oldest ones beyond the limits.
    pub fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.ends.push_back(self.base + self.text.len() as u64);
        self.total += 1;
        let tail = self.base + self.text.len() as u64;
        // Keep at least the newest line even when it alone exceeds max_bytes.
        while self.ends.len() > self.max_lines
            || (self.ends.len() > 1 && (tail - self.head) as usize > self.max_bytes)
        {
            self.head = self.ends.pop_front().unwrap_or(self.head);
            self.dropped += 1;
        }
        let dead = (self.head - self.base) as usize;
        let live = self.text.len() - dead;
        if dead >= COMPACT_MIN && dead > live / 2 {
            self.text.drain(..dead);
            self.base = self.head;
            // After a burst of long lines, give the capacity back.
            if self.text.capacity() > 4 * self.text.len().max(COMPACT_MIN) {
                self.text.shrink_to(2 * self.text.len().max(COMPACT_MIN));
            }
        }
    }
}

/// Case-insensitive needle; ASCII needles (the common case) scan without allocating.
struct Matcher {
    lower: String,
}

impl Matcher {
    fn new(needle: &str) -> Self {
        Matcher {
            lower: needle.to_lowercase(),
        }
    }

    fn is_in(&self, hay: &str) -> bool {
        let nb = self.lower.as_bytes();
        if !self.lower.is_ascii() {
            return hay.to_lowercase().contains(&self.lower);
        }
        let hb = hay.as_bytes();
        let (lo, up) = (nb[0], nb[0].to_ascii_uppercase());
        let mut at = 0;
        while let Some(k) = memchr2(lo, up, &hb[at..]) {
            let i = at + k;
            if hb.len() - i < nb.len() {
                return false;
            }
            if hb[i..i + nb.len()].eq_ignore_ascii_case(nb) {
                return true;
            }
            at = i + 1;
        }
        false
    }
}

/// Splits a byte stream into lines across reads, applying the `\r`, cut, ANSI and UTF-8 rules.
#[derive(Debug, Default)]
struct Splitter {
    max: usize,
    /// Raw bytes of the current line since its start or its last bare `\r`; at most `max`.
    cur: Vec<u8>,
    /// Bytes of the current line dropped beyond `max`.
    cut: u64,
    /// The last byte seen was `\r`: a `\n` next makes it `\r\n`, anything else a bare `\r`.
    pending_cr: bool,
    scratch: Vec<u8>,
    out: String,
}

impl Splitter {
    fn new(max: usize) -> Self {
        Splitter {
            max: max.max(16),
            ..Default::default()
        }
    }

    fn reset(&mut self) {
        self.cur.clear();
        self.cut = 0;
        self.pending_cr = false;
    }

    fn append(&mut self, seg: &[u8]) {
        let take = seg.len().min(self.max - self.cur.len());
        self.cur.extend_from_slice(&seg[..take]);
        self.cut += (seg.len() - take) as u64;
    }

    /// Ends the current line with `seg` as its last bytes.
    fn finish(&mut self, seg: &[u8], emit: &mut dyn FnMut(&str)) {
        if self.cur.is_empty() && self.cut == 0 {
            // Whole line inside one read: no copy.
            emit(render(seg, 0, self.max, &mut self.scratch, &mut self.out));
        } else {
            self.append(seg);
            emit(render(
                &self.cur,
                self.cut,
                self.max,
                &mut self.scratch,
                &mut self.out,
            ));
        }
        self.cur.clear();
        self.cut = 0;
    }

    /// A bare `\r`: the line is redrawn from its start.
    fn overwrite(&mut self) {
        self.cur.clear();
        self.cut = 0;
    }

    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(&str)) {
        let mut pos = 0;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                self.finish(&[], emit);
                pos = 1;
            } else {
                self.overwrite();
            }
        }
        while pos < chunk.len() {
            let Some(k) = memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.append(&chunk[pos..]);
                break;
            };
            let end = pos + k;
            let seg = &chunk[pos..end];
            match (chunk[end], chunk.get(end + 1)) {
                (b'\n', _) => {
                    self.finish(seg, emit);
                    pos = end + 1;
                }
                (_, Some(b'\n')) => {
                    self.finish(seg, emit);
                    pos = end + 2;
                }
                (_, Some(_)) => {
                    // Text before a bare `\r` is overwritten: drop it unseen.
                    self.overwrite();
                    pos = end + 1;
                }
                (_, None) => {
                    // Undecided until the next read; meanwhile the partial shows this text.
                    self.append(seg);
                    self.pending_cr = true;
                    pos = end + 1;
                }
            }
        }
    }

    /// The unterminated line as it would be rendered, if any.
    fn partial(&mut self) -> Option<&str> {
        if self.cur.is_empty() && self.cut == 0 {
            return None;
        }
        Some(render(
            &self.cur,
            self.cut,
            self.max,
            &mut self.scratch,
            &mut self.out,
        ))
        .filter(|s| !s.is_empty())
    }

    fn bytes(&self) -> usize {
        self.cur.capacity() + self.scratch.capacity() + self.out.capacity()
    }
}

/// Raw line bytes to display text: cut to `max` on a char boundary with a marker, ANSI escapes
/// removed, invalid UTF-8 replaced. Borrows `raw` when it is clean UTF-8 (the common case).
fn render<'a>(
    raw: &'a [u8],
    mut cut: u64,
    max: usize,
    scratch: &'a mut Vec<u8>,
    out: &'a mut String,
) -> &'a str {
    let mut raw = raw;
    if raw.len() > max {
        cut += (raw.len() - max) as u64;
        raw = &raw[..max];
    }
    if cut > 0 {
        let t = incomplete_utf8_tail(raw);
        raw = &raw[..raw.len() - t];
        cut += t as u64;
    }
    if memchr(0x1b, raw).is_some() {
        strip_ansi(raw, scratch);
        raw = scratch;
    }
    if cut == 0
        && let Ok(s) = std::str::from_utf8(raw)
    {
        return s;
    }
    out.clear();
    match String::from_utf8_lossy(raw) {
        Cow::Borrowed(s) => out.push_str(s),
        Cow::Owned(s) => out.push_str(&s),
    }
    if cut > 0 {
        let _ = write!(out, " … [+{cut} bytes]");
    }
    out
}

/// Length of an incomplete UTF-8 sequence at the end of `b` (0 if it ends on a char boundary),
/// so a cut never leaves half a character to show as U+FFFD.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(4) {
        let c = b[b.len() - back];
        if c & 0xC0 != 0x80 {
            let need = match c {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if need > back { back } else { 0 };
        }
    }
    0
}

/// Copies `raw` into `out` without escape sequences: CSI (`ESC [ params final`, colours and
/// cursor moves from tqdm/DeepSpeed), OSC (`ESC ] … BEL|ST`) and the short `ESC [ -/]* final`
/// forms such as `ESC ( B` from `tput sgr0`. A sequence cut off at the end is dropped.
fn strip_ansi(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(k) = memchr(0x1b, &raw[i..]) {
        out.extend_from_slice(&raw[i..i + k]);
        let mut j = i + k + 1;
        match raw.get(j) {
            Some(b'[') => {
                j += 1;
                while j < raw.len() && (0x20..=0x3f).contains(&raw[j]) {
                    j += 1;
                }
                if j < raw.len() && (0x40..=0x7e).contains(&raw[j]) {
                    j += 1;
                }
            }
            Some(b']') => {
                j += 1;
                while j < raw.len() && raw[j] != 0x07 && raw[j] != 0x1b {
                    j += 1;
                }
                if raw.get(j) == Some(&0x07) {
                    j += 1;
                } else if raw.get(j) == Some(&0x1b) && raw.get(j + 1) == Some(&b'\\') {
                    j += 2;
                }
            }
            _ => {
                while j < raw.len() && (0x20..=0x2f).contains(&raw[j]) {
                    j += 1;
                }
                if j < raw.len() && (0x30..=0x7e).contains(&raw[j]) {
                    j += 1;
                }
            }
        }
        i = j;
    }
    out.extend_from_slice(&raw[i..]);
}

/// Follows one file by path, surviving its absence, truncation and replacement.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    opts: TailOptions,
    file: Option<File>,
    /// (dev, ino) of `file`, to notice the path now names another file.
    id: (u64, u64),
    /// Next byte of `file` to read.
    offset: u64,
    /// Discarding bytes up to the first `\n` after a start in the middle of a big file.
    skipping: bool,
    exists: bool,
    last_growth: Option<Instant>,
    bytes_read: u64,
    splitter: Splitter,
    buffer: LogBuffer,
    readbuf: Vec<u8>,
}

impl Tailer {
    /// Does not fail if the file does not exist yet (rank logs appear a few seconds after
    /// launch); polls will pick it up. An existing file's content (its last `initial_bytes`) is
    /// loaded into the buffer as history: `on_line` of later polls only sees what is appended
    /// after this call. Open errors are reported by the next `poll`.
    pub fn new(path: impl Into<PathBuf>, opts: TailOptions) -> Self {
        let mut t = Tailer {
            path: path.into(),
            splitter: Splitter::new(opts.max_line_bytes),
            buffer: LogBuffer::new(opts.max_lines, opts.max_bytes),
            opts,
            file: None,
            id: (0, 0),
            offset: 0,
            skipping: false,
            exists: false,
            last_growth: None,
            bytes_read: 0,
            readbuf: Vec::new(),
        };
        let _ = t.poll(&mut |_| {});
        // The file's own modification time says when it last grew: a rank that hung before the
        // view was opened must still show how long it has been silent.
        t.last_growth = std::fs::metadata(&t.path)
            .ok()
            .filter(|m| m.len() > 0)
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.elapsed().ok())
            .and_then(|age| Instant::now().checked_sub(age));
        t
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn buffer(&self) -> &LogBuffer {
        &self.buffer
    }

    /// When a poll last found the file grown; None if never seen growing or not existing.
    pub fn last_growth(&self) -> Option<Instant> {
        self.last_growth
    }

    /// Whether the path existed at the last poll.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Bytes read from disk so far (all files followed at this path).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Approximate heap memory held: buffer, read buffer and the line being assembled.
    pub fn bytes(&self) -> usize {
        self.buffer.bytes() + self.readbuf.capacity() + self.splitter.bytes()
    }

    /// Reads what was appended since the last poll, calling `on_line` for every complete line
    /// (as displayed: after `\r` handling, decoding and cutting) and returning how many there
    /// were. Marker lines go to the buffer only. Errors other than NotFound are returned.
    ///
    /// Truncation is noticed when the size drops below what was read; a file truncated and
    /// refilled past that point between two polls looks like growth (as with `tail -F`).
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&str)) -> io::Result<usize> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        self.exists = meta.is_some();
        let mut lines = 0;
        let size = match (meta, &self.file) {
            (Some(m), Some(_)) if (m.dev(), m.ino()) == self.id => m.len(),
            (Some(_), _) => {
                let f = match File::open(&self.path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.exists = false;
                        return Ok(0);
                    }
                    Err(e) => return Err(e),
                };
                // Use the opened file's own metadata: the path may have changed since the stat.
                let m = f.metadata()?;
                if let Some(old) = &self.file {
                    // Drain what the old file got since the last poll, then switch.
                    let old_len = old.metadata()?.len();
                    lines = self.read_to(old_len, on_line)?;
                    self.interrupt(MARK_REPLACED);
                }
                self.file = Some(f);
                self.id = (m.dev(), m.ino());
                self.restart(m.len());
                m.len()
            }
            // Deleted or renamed away: keep reading what its writer still appends.
            (None, Some(f)) => f.metadata()?.len(),
            (None, None) => return Ok(0),
        };
        if size < self.offset {
            self.interrupt(MARK_TRUNCATED);
            self.restart(size);
        }
        Ok(lines + self.read_to(size, on_line)?)
    }

    /// Ends the current text before a discontinuity: the partial line is kept as a line (the
    /// user saw it) and a marker says what happened.
    fn interrupt(&mut self, marker: &str) {
        if let Some(p) = self.splitter.partial() {
            self.buffer.push(p);
        }
        self.splitter.reset();
        self.buffer.set_partial(None);
        self.buffer.push(marker);
    }

    /// Starts reading a file of `size` bytes: from 0, or for a big one from the first line start
    /// within its last `initial_bytes`. Starting one byte earlier and skipping through the first
    /// `\n` keeps a line that begins exactly at the window edge.
    fn restart(&mut self, size: u64) {
        self.splitter.reset();
        if size > self.opts.initial_bytes {
            self.offset = size - self.opts.initial_bytes - 1;
            self.skipping = true;
        } else {
            self.offset = 0;
            self.skipping = false;
        }
    }

    fn read_to(&mut self, size: u64, on_line: &mut dyn FnMut(&str)) -> io::Result<usize> {
        let Some(file) = &self.file else { return Ok(0) };
        let mut lines = 0;
        let mut budget = READ_CAP;
        let mut grew = false;
        while self.offset < size && budget > 0 {
            if self.readbuf.is_empty() {
                self.readbuf = vec![0; READ_CHUNK];
            }
            let want = (size - self.offset).min(budget).min(READ_CHUNK as u64) as usize;
            let n = match file.read_at(&mut self.readbuf[..want], self.offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let start = self.offset;
            self.offset += n as u64;
            self.bytes_read += n as u64;
            budget -= n as u64;
            grew = true;
            let mut chunk = &self.readbuf[..n];
            if self.skipping {
                let Some(i) = memchr(b'\n', chunk) else {
                    continue;
                };
                self.skipping = false;
                let skipped = start + i as u64 + 1;
                self.buffer
                    .push(&format!("── {skipped} earlier bytes not shown ──"));
                chunk = &chunk[i + 1..];
            }
            let buffer = &mut self.buffer;
            self.splitter.feed(chunk, &mut |l| {
                buffer.push(l);
                on_line(l);
                lines += 1;
            });
        }
        if grew {
            self.last_growth = Some(Instant::now());
            let p = if self.skipping {
                None
            } else {
                self.splitter.partial()
            };
            self.buffer.set_partial(p);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn opts(max_lines: usize) -> TailOptions {
        TailOptions {
            max_lines,
            ..Default::default()
        }
    }

    fn append(path: &Path, data: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(data).unwrap();
    }

    fn collect(t: &mut Tailer) -> Vec<String> {
        let mut v = Vec::new();
        t.poll(&mut |l| v.push(l.to_owned())).unwrap();
        v
    }

    fn lines(b: &LogBuffer) -> Vec<&str> {
        b.iter().collect()
    }

    #[test]
    fn growing_file_with_split_lines_and_chars() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rank0.log");
        append(&p, b"");
        let mut t = Tailer::new(&p, opts(100));
        assert!(t.exists() && t.buffer().is_empty() && t.last_growth().is_none());
        append(&p, b"first\nsec");
        assert_eq!(collect(&mut t), ["first"]);
        assert_eq!(t.buffer().partial(), Some("sec"));
        assert!(t.last_growth().is_some());
        // "é" is C3 A9: split across two writes.
        append(&p, b"ond caf\xC3");
        assert_eq!(collect(&mut t), Vec::<String>::new());
        append(&p, b"\xA9\r\nthird\n");
        assert_eq!(collect(&mut t), ["second café", "third"]);
        assert_eq!(lines(t.buffer()), ["first", "second café", "third"]);
        assert_eq!(t.buffer().partial(), None);
        assert_eq!(t.buffer().total_lines(), 3);
        assert_eq!(collect(&mut t), Vec::<String>::new());
    }

    #[test]
    fn carriage_return_progress_bars() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bar.log");
        append(&p, "10%|█ |\r 20%|██ |\r 30%|███|\nnext\n".as_bytes());
        let mut t = Tailer::new(&p, opts(100));
        assert_eq!(lines(t.buffer()), [" 30%|███|", "next"]);
        // Bar being redrawn: the partial shows the latest state only.
        append(&p, b"\r  1%|\r  2%|");
        assert_eq!(collect(&mut t), Vec::<String>::new());
        assert_eq!(t.buffer().partial(), Some("  2%|"));
        // `\r` ending a read then `\n` starting the next is a `\r\n`, not an overwrite.
        append(&p, b"\r  3%|done\r");
        collect(&mut t);
        assert_eq!(t.buffer().partial(), Some("  3%|done"));
        append(&p, b"\nafter\n");
        assert_eq!(collect(&mut t), ["  3%|done", "after"]);
        // ... whereas a `\r` ending a read then text is an overwrite.
        append(&p, b"old\r");
        collect(&mut t);
        append(&p, b"new\n");
        assert_eq!(collect(&mut t), ["new"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.log");
        let mut t = Tailer::new(&p, opts(100));
        append(&p, b"ok \xFF\xFE bytes\n\xC3(\n");
        assert_eq!(collect(&mut t), ["ok \u{FFFD}\u{FFFD} bytes", "\u{FFFD}("]);
    }

    #[test]
    fn huge_line_is_cut_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let mut t = Tailer::new(&p, opts(100));
        let max = TailOptions::default().max_line_bytes;
        // 5 MB line with a multi-byte char straddling the cut, written in pieces.
        let mut line = vec![b'x'; max - 1];
        line.extend_from_slice("é".as_bytes());
        line.resize(5_000_000, b'y');
        for piece in line.chunks(1_000_000) {
            append(&p, piece);
            collect(&mut t);
            assert!(t.bytes() < 1 << 20, "{}", t.bytes());
        }
        append(&p, b"\nshort\n");
        let got = collect(&mut t);
        assert_eq!(got.len(), 2);
        let want = format!(
            "{} … [+{} bytes]",
            "x".repeat(max - 1),
            5_000_000 - (max - 1)
        );
        assert_eq!(got[0], want);
        assert_eq!(got[1], "short");
        assert!(t.buffer().bytes() < 256 << 10, "{}", t.buffer().bytes());
        assert!(t.bytes() < 1 << 20, "{}", t.bytes());
    }

    #[test]
    fn ring_keeps_last_lines_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("many.log");
        let mut t = Tailer::new(&p, opts(1000));
        let mut peak = 0;
        for chunk in 0..10 {
            let s: String = (chunk * 10_000..(chunk + 1) * 10_000)
                .map(|i| format!("line {i}\n"))
                .collect();
            append(&p, s.as_bytes());
            assert_eq!(t.poll(&mut |_| {}).unwrap(), 10_000);
            peak = peak.max(t.buffer().bytes());
        }
        let b = t.buffer();
        assert_eq!(b.len(), 1000);
        assert_eq!(b.total_lines(), 100_000);
        assert_eq!(b.dropped(), 99_000);
        assert_eq!(b.line(0), Some("line 99000"));
        assert_eq!(b.line(999), Some("line 99999"));
        assert_eq!(b.iter().next_back(), Some("line 99999"));
        assert_eq!(b.line(1000), None);
        // 1000 lines of ~11 bytes: the arena compacts instead of growing.
        assert!(peak < 256 << 10, "{peak}");
    }

    #[test]
    fn byte_budget_evicts_long_lines() {
        let mut b = LogBuffer::new(5000, 100_000);
        let line = "z".repeat(10_000);
        for _ in 0..1000 {
            b.push(&line);
        }
        assert_eq!(b.len(), 10);
        assert!(b.bytes() < 1 << 20, "{}", b.bytes());
        // A single line above the budget is still kept.
        b.push(&"w".repeat(200_000));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn every_line_reaches_on_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stream.log");
        let mut t = Tailer::new(&p, TailOptions::default());
        let (mut count, mut next, mut last) = (0u64, 0u64, String::new());
        for chunk in 0..10u64 {
            let mut s = String::new();
            for i in chunk * 20_000..(chunk + 1) * 20_000 {
                let _ = writeln!(s, "step {i:08} loss 0.123456 lr 1e-4 {}", "=".repeat(60));
            }
            append(&p, s.as_bytes());
            let n = t
                .poll(&mut |l| {
                    assert_eq!(&l[5..13], format!("{next:08}"));
                    next += 1;
                    count += 1;
                    last.clear();
                    last.push_str(l);
                })
                .unwrap();
            assert_eq!(n, 20_000);
        }
        assert_eq!(count, 200_000);
        assert!(last.starts_with("step 00199999 "));
        assert_eq!(t.buffer().len(), 5000);
        assert!(t.bytes() < 4 << 20, "{}", t.bytes());
    }

    #[test]
    fn truncation_restarts_with_marker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trunc.log");
        append(&p, b"old one\nold two\nhalf");
        let mut t = Tailer::new(&p, opts(100));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, b"new\n");
        assert_eq!(collect(&mut t), ["new"]);
        assert_eq!(
            lines(t.buffer()),
            ["old one", "old two", "half", MARK_TRUNCATED, "new"]
        );
    }

    #[test]
    fn replacement_reopens_with_marker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rep.log");
        append(&p, b"run one, a longer first file\n");
        let mut t = Tailer::new(&p, opts(100));
        append(&p, b"last words\n");
        let q = dir.path().join("rep.log.new");
        append(&q, b"run two\n");
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(collect(&mut t), ["last words", "run two"]);
        assert_eq!(
            lines(t.buffer()),
            [
                "run one, a longer first file",
                "last words",
                MARK_REPLACED,
                "run two"
            ]
        );
        append(&p, b"more\n");
        assert_eq!(collect(&mut t), ["more"]);
    }

    #[test]
    fn an_existing_file_reports_its_age_as_the_last_growth() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.log");
        std::fs::write(&p, b"x\n").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let t = Tailer::new(&p, opts(100));
        let silent = t.last_growth().unwrap().elapsed().as_secs();
        assert!((3599..3700).contains(&silent), "{silent}");
    }

    #[test]
    fn file_created_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("late.log");
        let mut t = Tailer::new(&p, opts(100));
        assert!(!t.exists());
        assert_eq!(collect(&mut t), Vec::<String>::new());
        assert!(t.last_growth().is_none());
        append(&p, b"hello\n");
        assert_eq!(collect(&mut t), ["hello"]);
        assert!(t.exists() && t.last_growth().is_some());
        std::fs::remove_file(&p).unwrap();
        collect(&mut t);
        assert!(!t.exists());
    }

    #[test]
    fn big_existing_file_reads_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.log");
        let line = format!("{}\n", "a".repeat(99));
        let block = line.repeat(10_000); // 1 MB
        for _ in 0..50 {
            append(&p, block.as_bytes());
        }
        // Limits high enough that the marker stays in the ring.
        let o = TailOptions {
            max_lines: 50_000,
            max_bytes: 8 << 20,
            ..Default::default()
        };
        let mut t = Tailer::new(&p, o.clone());
        assert!(t.bytes_read() <= o.initial_bytes + 1, "{}", t.bytes_read());
        assert!(t.bytes_read() >= o.initial_bytes);
        let b = t.buffer();
        // 4 MiB is a whole number of 100-byte lines plus 4304 bytes: skip to the next line start.
        let skipped = 50_000_000 - (o.initial_bytes / 100) * 100;
        assert_eq!(
            b.line(0),
            Some(format!("── {skipped} earlier bytes not shown ──").as_str())
        );
        assert_eq!(b.len(), 1 + o.initial_bytes as usize / 100);
        assert_eq!(b.iter().next_back(), Some(&line[..99]));
        append(&p, b"fresh\n");
        assert_eq!(collect(&mut t), ["fresh"]);
        assert!(t.bytes_read() <= o.initial_bytes + 7);
    }

    #[test]
    fn window_edge_on_line_start_keeps_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.log");
        append(&p, b"0123\n5678\nabcd\n");
        let t = Tailer::new(
            &p,
            TailOptions {
                initial_bytes: 10,
                ..Default::default()
            },
        );
        assert_eq!(
            lines(t.buffer()),
            ["── 5 earlier bytes not shown ──", "5678", "abcd"]
        );
    }

    #[test]
    fn search_wraps_both_ways() {
        let mut b = LogBuffer::new(100, 1 << 20);
        for l in ["Epoch 1", "loss 0.5", "EPOCH 2", "loss 0.4", "épOque Ü"] {
            b.push(l);
        }
        assert_eq!(b.search("epoch", 0, false), Some(0));
        assert_eq!(b.search("epoch", 1, false), Some(2));
        assert_eq!(b.search("epoch", 3, false), Some(0));
        assert_eq!(b.search("epoch", 1, true), Some(0));
        assert_eq!(b.search("epoch", 0, true), Some(0));
        assert_eq!(b.search("LOSS", 0, true), Some(3));
        assert_eq!(b.search("loss", usize::MAX, true), Some(3));
        assert_eq!(b.search("loss", usize::MAX, false), Some(1));
        assert_eq!(b.search("ÉPOQUE ü", 0, false), Some(4));
        assert_eq!(b.search("nope", 0, false), None);
        assert_eq!(b.search("", 0, false), None);
    }

    #[test]
    fn ansi_sequences_are_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ansi.log");
        let mut t = Tailer::new(&p, opts(100));
        append(
            &p,
            b"\x1b[32mINFO\x1b[0m ready \x1b(B\x1b[m\x1b]0;title\x07done\n\x1b[1;3",
        );
        assert_eq!(collect(&mut t), ["INFO ready done"]);
        assert_eq!(t.buffer().partial(), None);
        append(&p, b"1mred\x1b[0m\n");
        assert_eq!(collect(&mut t), ["red"]);
    }
}
