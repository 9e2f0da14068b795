//! The Config tab: the workspace's configs on the left; the editor (TOML coloured, problems
//! marked in the gutter and their lines underlined) over the problems list on the right; and
//! the tab's dialogs. The text is drawn here, one visible line at a time, from the buffer the
//! editing widget keeps (see `tui::config::editor`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::dialogs::popup;
use crate::trainer::lint::{Diagnostic, Expect, Severity};
use crate::tui::app::{State, Tab};
use crate::tui::config::editor::{Tok, classify, states_until};
use crate::tui::config::picker::{Picker, Row};
use crate::tui::config::{
    After, Buffer, ConfigOverlay, ConfigState, Focus, PromptKind, Role, display_path, severity_mark,
};
use crate::tui::theme::Theme;
use crate::units::ellipsize;

/// Tab stops in the editor (as ratatui-textarea counts them).
const TAB: usize = 4;

pub fn severity_style(theme: &Theme, s: Severity) -> Style {
    match s {
        Severity::Error => theme.error(),
        Severity::Warning => theme.warn(),
        Severity::Info => theme.info(),
    }
}

/// Where the tab's panes are.
#[derive(Debug, Default, Clone, Copy)]
pub struct Areas {
    pub files: Option<Rect>,
    /// The welcome text (no file open).
    pub welcome: Option<Rect>,
    pub editor: Option<Rect>,
    pub diags: Option<Rect>,
}

pub fn areas(s: &State, area: Rect) -> Areas {
    let mut a = Areas::default();
    if area.width == 0 || area.height == 0 {
        return a;
    }
    let c = &s.config;
    let open = c.main.is_some();
    // Narrow terminals show one side: the list, or the editor with its problems.
    let (files, right) = if area.width < 72 {
        if open && c.focus != Focus::Files {
            (None, Some(area))
        } else {
            (Some(area), None)
        }
    } else {
        let list_w = if open {
            (area.width / 4).clamp(24, 40)
        } else {
            (area.width * 2 / 5).clamp(30, 60)
        };
        (
            Some(Rect::new(area.x, area.y, list_w, area.height)),
            Some(Rect::new(
                area.x + list_w,
                area.y,
                area.width - list_w,
                area.height,
            )),
        )
    };
    a.files = files;
    let Some(right) = right else { return a };
    if !open {
        a.welcome = Some(right);
        return a;
    }
    let n = c.all_diags().len();
    let want = if c.focus == Focus::Diagnostics { 10 } else { 6 };
    let diag_h = if right.height >= 12 {
        (n.clamp(1, want) as u16 + 2).min(right.height / 2)
    } else {
        0
    };
    let ed = Rect::new(right.x, right.y, right.width, right.height - diag_h);
    a.editor = Some(ed);
    if diag_h > 0 {
        a.diags = Some(Rect::new(right.x, right.y + ed.height, right.width, diag_h));
    }
    a
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let a = areas(s, area);
    if let Some(r) = a.files {
        draw_files(f, s, theme, r);
    }
    if let Some(r) = a.welcome {
        draw_welcome(f, theme, r);
    }
    if let Some(r) = a.editor {
        draw_editor(f, s, theme, r);
    }
    if let Some(r) = a.diags {
        draw_diags(f, s, theme, r);
    }
}

/// What a click or the wheel is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// A file of the list (None: elsewhere in the list).
    File(Option<usize>),
    /// A place in the text: (row, char column).
    Text(usize, usize),
    /// A problem of the list (None: elsewhere in the list).
    Diag(Option<usize>),
}

fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x.saturating_add(1),
        r.y.saturating_add(1),
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

/// The rows of the file list: a heading (None) before each group, then its files.
fn file_rows(c: &ConfigState) -> Vec<Option<usize>> {
    let mut rows = Vec::new();
    let mut group: Option<&str> = None;
    for (i, e) in c.files.iter().enumerate() {
        if group != Some(e.group.as_str()) {
            group = Some(e.group.as_str());
            rows.push(None);
        }
        rows.push(Some(i));
    }
    rows
}

/// The first row shown of a list of `n` rows `h` high with row `sel` selected.
fn list_top(sel: usize, h: usize) -> usize {
    (sel + 1).saturating_sub(h)
}

pub fn hit(s: &State, area: Rect, pos: ratatui::layout::Position) -> Option<Hit> {
    let a = areas(s, area);
    let c = &s.config;
    if let Some(r) = a.files.filter(|r| r.contains(pos)) {
        let i = inner(r);
        if !c.loaded || !i.contains(pos) {
            return Some(Hit::File(None));
        }
        let rows = file_rows(c);
        let sel = c.selected.min(c.files.len().saturating_sub(1));
        let sel_row = rows.iter().position(|r| *r == Some(sel)).unwrap_or(0);
        let at = list_top(sel_row, i.height as usize) + (pos.y - i.y) as usize;
        return Some(Hit::File(rows.get(at).copied().flatten()));
    }
    if let Some(r) = a.editor.filter(|r| r.contains(pos)) {
        let b = c.current()?;
        let i = inner(r);
        let digits = b.editor.lines().len().to_string().len().max(2) as u16;
        let gutter = digits + 3;
        let (top, left, _) = b.editor.view.get();
        let row = top + pos.y.saturating_sub(i.y) as usize;
        let dcol = left + pos.x.saturating_sub(i.x + gutter) as usize;
        let (row, col) = b.editor.position_at(row, dcol);
        return Some(Hit::Text(row, col));
    }
    if let Some(r) = a.diags.filter(|r| r.contains(pos)) {
        let i = inner(r);
        if !i.contains(pos) {
            return Some(Hit::Diag(None));
        }
        let n = c.all_diags().len();
        let sel = c.diag_sel.min(n.saturating_sub(1));
        let at = list_top(sel, i.height as usize) + (pos.y - i.y) as usize;
        return Some(Hit::Diag((at < n).then_some(at)));
    }
    None
}

fn block<'a>(theme: &Theme, title: Line<'a>, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(title)
}

// ---------------------------------------------------------------------------------------------
// File list

fn draw_files(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let c = &s.config;
    let focused = c.focus == Focus::Files;
    let b = block(theme, Line::styled(" Configs ", theme.title()), focused);
    let inner = b.inner(area);
    f.render_widget(b, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if !c.loaded {
        lines.push(Line::styled("listing…", theme.muted()));
    } else if c.files.is_empty() {
        lines.push(Line::raw("No configs yet. Looked in:"));
        for d in &c.dirs {
            lines.push(Line::styled(
                format!("  {}", ellipsize(&display_path(d), w.saturating_sub(2))),
                theme.muted(),
            ));
        }
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("n ", theme.accent().add_modifier(Modifier::BOLD)),
            Span::raw("new config from a template"),
        ]));
        lines.push(Line::from(vec![
            Span::styled("o ", theme.accent().add_modifier(Modifier::BOLD)),
            Span::raw("open a config by path"),
        ]));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let rows = file_rows(c);
    let sel = c.selected.min(c.files.len().saturating_sub(1));
    let sel_row = rows.iter().position(|r| *r == Some(sel)).unwrap_or(0);
    let mut group: Option<&str> = None;
    for (i, e) in c.files.iter().enumerate() {
        if group != Some(e.group.as_str()) {
            group = Some(e.group.as_str());
            lines.push(Line::styled(
                ellipsize(&e.group, w),
                theme.muted().add_modifier(Modifier::BOLD),
            ));
        }
        let open_buf = [&c.main, &c.dataset]
            .into_iter()
            .flatten()
            .find(|b| b.path == e.path);
        let mark = match open_buf {
            Some(b) if b.dirty => "● ",
            Some(_) => "▸ ",
            None => "  ",
        };
        let kind = e.kind.label();
        let name_w = w.saturating_sub(kind.len() + 3);
        let name = e
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = ellipsize(&name, name_w);
        let pad = w.saturating_sub(2 + name.chars().count() + kind.len());
        let selected = i == sel;
        let mut line = Line::from(vec![
            Span::styled(mark, theme.accent()),
            Span::raw(name),
            Span::raw(" ".repeat(pad)),
            Span::styled(kind, theme.muted()),
        ]);
        if selected {
            line = line.style(if focused {
                theme.selected()
            } else {
                Style::default().add_modifier(Modifier::BOLD)
            });
        }
        lines.push(line);
    }
    let h = inner.height as usize;
    let top = list_top(sel_row, h);
    let shown: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    f.render_widget(Paragraph::new(shown), inner);
}

fn draw_welcome(f: &mut Frame, theme: &Theme, area: Rect) {
    let b = block(theme, Line::styled(" Config editor ", theme.title()), false);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let key = |k: &'static str, d: &'static str| {
        Line::from(vec![
            Span::styled(
                format!("  {k:<8}"),
                theme.accent().add_modifier(Modifier::BOLD),
            ),
            Span::raw(d),
        ])
    };
    let mut lines = vec![
        Line::raw("Edit diffusion-pipe training and dataset configs, checked as you type:"),
        Line::raw("model paths, dtypes, adapters, buckets, the dataset config it names."),
        Line::raw(""),
        key("Enter", "open the selected config"),
        key("n", "new config from a template (any model type)"),
        key("o", "open a config by path"),
        key("? / F1", "all the keys"),
        Line::raw(""),
        Line::styled(
            "The list shows recent configs and the *.toml files of config_dirs (dpgui's config.toml; by default the current directory and dpgui's config directory).",
            theme.muted(),
        ),
    ];
    lines.truncate(inner.height as usize);
    f.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        inner,
    );
}

// ---------------------------------------------------------------------------------------------
// Editor

fn tok_style(theme: &Theme, t: Tok) -> Style {
    match t {
        Tok::Plain | Tok::Punct => Style::default(),
        Tok::Comment => theme.muted(),
        Tok::Header => theme.title(),
        Tok::Key => theme.accent(),
        Tok::Str => theme.ok(),
        Tok::Num | Tok::Bool => Style::default().fg(theme.info),
    }
}

fn char_width(ch: char) -> usize {
    let mut b = [0u8; 4];
    Span::raw(&*ch.encode_utf8(&mut b)).width()
}

/// The title: the buffers (the shown one highlighted), modified marks, where the cursor is.
fn editor_title<'a>(c: &'a ConfigState, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    let name = |b: &Buffer| format!("{}{}", b.name(), if b.dirty { " ●" } else { "" });
    for role in [Role::Main, Role::Dataset] {
        let Some(b) = c.buffer(role) else { continue };
        if role == Role::Dataset {
            spans.push(Span::styled(" │ ", theme.muted()));
        }
        let style = if c.active == role {
            theme.title()
        } else {
            theme.muted()
        };
        spans.push(Span::styled(name(b), style));
    }
    if c.dataset.is_none()
        && let Some(p) = &c.linked_dataset
    {
        spans.push(Span::styled(
            format!(
                " │ ^T {}",
                p.file_name().unwrap_or_default().to_string_lossy()
            ),
            theme.muted(),
        ));
    }
    if let Some(b) = c.current() {
        spans.push(Span::styled(
            format!(" · {} ", b.kind.label()),
            theme.muted(),
        ));
        if let Some(deleted) = b.disk_changed {
            spans.push(Span::styled(
                if deleted {
                    "deleted on disk "
                } else {
                    "changed on disk "
                },
                theme.warn(),
            ));
        }
    }
    Line::from(spans)
}

fn draw_editor(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let c = &s.config;
    let Some(b) = c.current() else { return };
    let focused = c.focus == Focus::Editor;
    let (row, col) = b.editor.cursor();
    let mut bottom = vec![];
    if let Some(q) = &c.search {
        bottom.push(Span::styled(format!(" find: {q}▏ "), theme.title()));
    }
    bottom.push(Span::styled(
        format!(
            " Ln {}, Col {}{} ",
            row + 1,
            col + 1,
            if c.linted { "" } else { " · checking…" }
        ),
        theme.muted(),
    ));
    let blk = block(theme, editor_title(c, theme), focused)
        .title_bottom(Line::from(bottom).right_aligned());
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    let lines = b.editor.lines();
    let digits = lines.len().to_string().len().max(2);
    let gutter = (digits + 3) as u16;
    let text_w = inner.width.saturating_sub(gutter) as usize;
    let h = inner.height as usize;
    // Keep the cursor in view; the position is remembered for the next frame.
    let (mut top, mut left, _) = b.editor.view.get();
    if row < top {
        top = row;
    } else if row >= top + h {
        top = row + 1 - h;
    }
    // Text that shrank leaves no empty rows under its last line.
    top = top.min(lines.len().saturating_sub(h));
    let cd = b.editor.cursor_display_col();
    if cd < left {
        left = cd;
    } else if text_w > 0 && cd >= left + text_w {
        left = cd + 1 - text_w;
    }
    b.editor.view.set(top, left, h);
    let sel = b.editor.selection();
    let in_sel = |r: usize, i: usize| sel.is_some_and(|(a, z)| (r, i) >= a && (r, i) < z);
    let mut st = states_until(lines, top);
    let mut gutter_lines = Vec::with_capacity(h);
    let mut text_lines = Vec::with_capacity(h);
    for (r, line) in lines.iter().enumerate().skip(top).take(h) {
        let (toks, next) = classify(line, st);
        st = next;
        let diag = b.diag_on(r);
        // Gutter: severity mark, line number.
        let (mark, mark_style) = match diag {
            Some(d) => (
                severity_mark(d.severity),
                severity_style(theme, d.severity).add_modifier(Modifier::REVERSED),
            ),
            None => (" ", Style::default()),
        };
        let num_style = match diag {
            Some(d) => severity_style(theme, d.severity),
            None if r == row => theme.accent().add_modifier(Modifier::BOLD),
            None => theme.muted(),
        };
        gutter_lines.push(Line::from(vec![
            Span::styled(mark, mark_style),
            Span::styled(format!(" {:>digits$} ", r + 1), num_style),
        ]));
        // Text: coloured per token, the selection, the cursor; a problem line underlined.
        let line_style = match diag {
            Some(d) if d.severity != Severity::Info => Style::default()
                .add_modifier(Modifier::UNDERLINED)
                .underline_color(severity_style(theme, d.severity).fg.unwrap_or_default()),
            _ => Style::default(),
        };
        let mut spans: Vec<Span> = Vec::new();
        let mut x = 0usize;
        let push = |spans: &mut Vec<Span>, x: &mut usize, text: String, w: usize, style: Style| {
            // Cells left of the view are skipped; a wide char cut by an edge becomes blanks.
            let (start, end) = (*x, *x + w);
            *x = end;
            if end <= left || start >= left + text_w {
                return;
            }
            let t = if start < left || end > left + text_w {
                " ".repeat(end.min(left + text_w) - start.max(left))
            } else {
                text
            };
            match spans.last_mut() {
                Some(last) if last.style == style => last.content.to_mut().push_str(&t),
                _ => spans.push(Span::styled(t, style)),
            }
        };
        let n = line.chars().count();
        for (i, ch) in line.chars().enumerate() {
            let mut style = tok_style(theme, toks[i]).patch(line_style);
            if in_sel(r, i) {
                style = style.patch(theme.selected());
            }
            if focused && r == row && i == col {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let (text, w) = if ch == '\t' {
                let w = TAB - x % TAB;
                (" ".repeat(w), w)
            } else if ch.is_control() {
                ("\u{fffd}".to_string(), 1)
            } else {
                (ch.to_string(), char_width(ch))
            };
            push(&mut spans, &mut x, text, w, style);
        }
        if focused && r == row && col >= n {
            push(
                &mut spans,
                &mut x,
                " ".into(),
                1,
                Style::default().add_modifier(Modifier::REVERSED),
            );
        }
        text_lines.push(Line::from(spans));
    }
    let g = Rect::new(inner.x, inner.y, gutter.min(inner.width), inner.height);
    f.render_widget(Paragraph::new(gutter_lines), g);
    let t = Rect::new(
        inner.x + g.width,
        inner.y,
        inner.width - g.width,
        inner.height,
    );
    f.render_widget(Paragraph::new(text_lines), t);
}

// ---------------------------------------------------------------------------------------------
// Problems

fn diag_place(c: &ConfigState, role: Option<Role>, d: &Diagnostic) -> String {
    let at = format!("{}:{}", d.line.max(1), d.column.max(1));
    match role {
        Some(Role::Main) if c.dataset.is_none() => at,
        _ => format!(
            "{}:{at}",
            d.file.file_name().unwrap_or_default().to_string_lossy()
        ),
    }
}

fn draw_diags(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let c = &s.config;
    let all = c.all_diags();
    let focused = c.focus == Focus::Diagnostics;
    let count = |sev| all.iter().filter(|r| r.d.severity == sev).count();
    let (e, w, i) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let title = if all.is_empty() && !c.linted {
        Line::styled(" Problems: checking… ", theme.muted())
    } else if all.is_empty() {
        Line::styled(" No problems found ", theme.ok())
    } else {
        let mut parts = Vec::new();
        if e > 0 {
            parts.push(Span::styled(plural(e, "error"), theme.error()));
        }
        if w > 0 {
            if !parts.is_empty() {
                parts.push(Span::raw(" · "));
            }
            parts.push(Span::styled(plural(w, "warning"), theme.warn()));
        }
        if i > 0 {
            if !parts.is_empty() {
                parts.push(Span::raw(" · "));
            }
            parts.push(Span::styled(format!("{i} info"), theme.info()));
        }
        let mut spans = vec![Span::styled(" Problems: ", theme.title())];
        spans.extend(parts);
        spans.push(Span::raw(" "));
        Line::from(spans)
    };
    let blk = block(theme, title, focused);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    if inner.height == 0 {
        return;
    }
    let h = inner.height as usize;
    let sel = c.diag_sel.min(all.len().saturating_sub(1));
    let top = list_top(sel, h);
    let places: Vec<String> = all.iter().map(|r| diag_place(c, r.role, r.d)).collect();
    // Aligned up to a point: a long file name does not push every message right.
    let pw = places
        .iter()
        .map(|p| p.chars().count())
        .max()
        .unwrap_or(0)
        .min(8);
    let mut lines = Vec::new();
    for (k, r) in all.iter().enumerate().skip(top).take(h) {
        let mut msg = r.d.message.clone();
        if let Some(fix) = &r.d.fix {
            msg.push_str(" → ");
            msg.push_str(fix);
        }
        let width = (inner.width as usize).saturating_sub(places[k].chars().count().max(pw) + 5);
        let mut line = Line::from(vec![
            Span::styled(
                severity_mark(r.d.severity),
                severity_style(theme, r.d.severity).add_modifier(Modifier::REVERSED),
            ),
            Span::styled(format!(" {:<pw$}  ", places[k]), theme.muted()),
            Span::raw(ellipsize(&msg, width)),
        ]);
        if focused && k == sel {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// The status line's text in the Config tab when no message is up: the problem under the
/// cursor (editor) or the selected one (problems list).
pub fn status_diag(s: &State) -> Option<(Severity, String)> {
    if s.tab != Tab::Config || s.overlay != crate::tui::app::Overlay::None {
        return None;
    }
    let d = s.config.status_diag()?;
    let mut t = format!("line {}: {}", d.line.max(1), d.message);
    if let Some(fix) = &d.fix {
        t.push_str(&format!(" (fix: {fix})"));
    }
    Some((d.severity, t))
}

// ---------------------------------------------------------------------------------------------
// Dialogs

fn after_text(then: &After) -> String {
    match then {
        After::Nothing => "go on".into(),
        After::Quit => "quit".into(),
        After::Tab(t) => format!("go to the {} tab", t.title()),
        After::Open(p) => format!(
            "open {}",
            p.file_name().unwrap_or_default().to_string_lossy()
        ),
        After::Close => "close it".into(),
        After::Launch => "launch".into(),
    }
}

fn key_line<'a>(theme: &Theme, k: &str, d: String) -> Line<'a> {
    Line::from(vec![
        Span::styled(
            format!("{k:<10} "),
            theme.accent().add_modifier(Modifier::BOLD),
        ),
        Span::raw(d),
    ])
}

pub fn draw_overlay(f: &mut Frame, s: &State, o: &ConfigOverlay, theme: &Theme, area: Rect) {
    let c = &s.config;
    match o {
        ConfigOverlay::Unsaved { then } => {
            let names = c.dirty_names().join(" and ");
            let what = after_text(then);
            popup(
                f,
                theme,
                area,
                "Unsaved changes",
                vec![
                    Line::styled(format!("{names}: not saved yet."), theme.warn()),
                    Line::raw(""),
                    key_line(theme, "s / Enter", format!("save, then {what}")),
                    key_line(theme, "d", format!("discard the changes, then {what}")),
                    key_line(theme, "Esc", "cancel: back to the editor".into()),
                ],
                "s save · d discard · Esc cancel",
            );
        }
        ConfigOverlay::Conflict { role, deleted, .. } => {
            let path = c
                .buffer(*role)
                .map(|b| display_path(&b.path))
                .unwrap_or_default();
            let mut lines = vec![
                Line::styled(
                    if *deleted {
                        format!("{path} was deleted since you opened it.")
                    } else {
                        format!("{path} changed on disk since you opened it.")
                    },
                    theme.warn(),
                ),
                Line::raw("Nothing was written."),
                Line::raw(""),
            ];
            if !deleted {
                lines.push(key_line(
                    theme,
                    "r",
                    "reload it from disk (discards yours; Ctrl-Z brings them back)".into(),
                ));
            }
            lines.push(key_line(
                theme,
                "o",
                if *deleted {
                    "write yours (creates it again)".into()
                } else {
                    "overwrite it with yours (the disk version goes to NAME.bak)".into()
                },
            ));
            lines.push(key_line(theme, "Esc", "cancel: keep editing".into()));
            popup(
                f,
                theme,
                area,
                "Changed on disk",
                lines,
                if *deleted {
                    "o write · Esc cancel"
                } else {
                    "r reload · o overwrite · Esc cancel"
                },
            );
        }
        ConfigOverlay::ConfirmDelete { path } => popup(
            f,
            theme,
            area,
            "Delete config?",
            vec![
                Line::styled(format!("Delete {}?", display_path(path)), theme.warn()),
                Line::raw("Its backup (NAME.bak), if any, stays."),
                Line::raw(""),
                Line::styled("y / Enter: delete    n / Esc: keep it", theme.title()),
            ],
            "y delete · n keep",
        ),
        ConfigOverlay::Prompt { kind, text } => {
            let dir = c
                .dirs
                .first()
                .map(|d| display_path(d))
                .unwrap_or_else(|| ".".into());
            let hint = match kind {
                PromptKind::OpenPath => format!("A config's path (~ works; relative to {dir})."),
                PromptKind::NewFile { .. } => format!(
                    "File name (in {dir} unless a path). Its dataset config goes beside it as NAME-dataset.toml."
                ),
                PromptKind::Duplicate { .. } => {
                    "Name of the copy (same folder unless a path).".into()
                }
                PromptKind::Rename { .. } => "New name (same folder unless a path).".into(),
            };
            popup(
                f,
                theme,
                area,
                &kind.title(),
                vec![
                    Line::styled(hint, theme.muted()),
                    Line::raw(""),
                    Line::from(vec![
                        Span::styled("> ", theme.accent()),
                        Span::raw(text.clone()),
                        Span::styled("▏", theme.accent()),
                    ]),
                ],
                "Enter ok · Esc cancel · Ctrl-U clear",
            );
        }
        ConfigOverlay::Template { sel } => draw_templates(f, theme, area, *sel),
        ConfigOverlay::Picker(p) => draw_picker(f, theme, area, p),
        ConfigOverlay::Hub(d) => super::hub::draw_dialog(f, theme, area, d),
    }
}

/// Rows of a list that fit, around the selection.
fn window(n: usize, sel: usize, rows: usize) -> std::ops::Range<usize> {
    let rows = rows.max(1);
    let top = (sel + 1).saturating_sub(rows).min(n.saturating_sub(rows));
    top..(top + rows).min(n)
}

fn draw_templates(f: &mut Frame, theme: &Theme, area: Rect, sel: usize) {
    let models = crate::trainer::lint::model_types();
    let rows = area.height.saturating_sub(6) as usize;
    let mut lines = vec![Line::styled(
        "The model type (its path keys are filled in as empty strings):",
        theme.muted(),
    )];
    for i in window(models.len(), sel, rows) {
        let (name, keys) = models[i];
        let keys: Vec<&str> = keys.iter().map(|k| k.key).collect();
        let mut line = Line::from(vec![
            Span::raw(format!(" {name:<18}")),
            Span::styled(keys.join(", "), theme.muted()),
        ]);
        if i == sel {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    popup(
        f,
        theme,
        area,
        "New config from a template",
        lines,
        "↑↓ select · Enter next · Esc cancel",
    );
}

fn draw_picker(f: &mut Frame, theme: &Theme, area: Rect, p: &Picker) {
    let what = match p.expect {
        Expect::File => "a file",
        Expect::Dir => "a directory",
        Expect::FileOrDir => "a file or a directory",
    };
    let width = (area.width as usize * 9 / 10).clamp(10, 100);
    let mut lines = vec![
        Line::styled(
            ellipsize(
                &format!("{}: {what}", p.loc.name()),
                width.saturating_sub(4),
            ),
            theme.title(),
        ),
        Line::styled(
            ellipsize(&p.loc.note, width.saturating_sub(4)),
            theme.muted(),
        ),
        Line::styled(
            ellipsize(
                "F4: download it from the Hugging Face Hub instead",
                width.saturating_sub(4),
            ),
            theme.muted(),
        ),
        Line::styled(
            ellipsize(&display_path(&p.dir), width.saturating_sub(4)),
            theme.accent(),
        ),
    ];
    if p.loading {
        lines.push(Line::styled("listing…", theme.muted()));
    }
    if let Some(e) = &p.error {
        lines.push(Line::styled(
            ellipsize(e, width.saturating_sub(4)),
            theme.error(),
        ));
    }
    let rows = p.rows();
    if rows.is_empty() && !p.loading {
        lines.push(Line::styled(
            "(nothing here that fits; Backspace goes up, . shows hidden files)",
            theme.muted(),
        ));
    }
    let room = area.height.saturating_sub(lines.len() as u16 + 3) as usize;
    let sel = p.sel.min(rows.len().saturating_sub(1));
    for i in window(rows.len(), sel, room.min(20)) {
        let (text, style) = match rows[i] {
            Row::Here => (" ./  (choose this directory)".to_string(), theme.accent()),
            Row::Entry(k) => {
                let e = &p.entries[k];
                if e.dir {
                    (format!(" {}/", e.name), theme.accent())
                } else {
                    (format!(" {}", e.name), Style::default())
                }
            }
        };
        let mut line = Line::styled(ellipsize(&text, width.saturating_sub(4)), style);
        if i == sel {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    // A fixed width, so the dialog does not jump as folders change.
    lines.push(Line::raw(" ".repeat(width.saturating_sub(6))));
    popup(
        f,
        theme,
        area,
        "Choose a path",
        lines,
        "Enter open/choose · Space choose · Bksp up · . hidden · ~ home · Esc cancel",
    );
}
