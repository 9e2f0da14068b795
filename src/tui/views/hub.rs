//! Hugging Face: the Config tab's hub dialog, and the downloads window (F6) with the hub cache
//! as its second page.

use super::centered;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::dialogs::popup;
use crate::hub::{FileState, JobState, JobStatus, Selection, SuggestionKind};
use crate::system::procs::format_age;
use crate::tui::app::State;
use crate::tui::config::display_path;
use crate::tui::config::hub::{HubDialog, Step};
use crate::tui::hub::{Page, eta};
use crate::tui::theme::Theme;
use crate::units::{ellipsize, escape_controls, format_bytes};

/// Text from the hub or a config, safe for the terminal.
fn shown(s: &str) -> String {
    escape_controls(s, false).into_owned()
}

/// Rows of a list that fit, around the selection.
fn window(n: usize, sel: usize, rows: usize) -> std::ops::Range<usize> {
    let rows = rows.max(1);
    let top = (sel + 1).saturating_sub(rows).min(n.saturating_sub(rows));
    top..(top + rows).min(n)
}

fn cursor<'a>(theme: &Theme) -> Span<'a> {
    Span::styled("▏", theme.accent())
}

// ---------------------------------------------------------------------------------------------
// The hub dialog

pub fn draw_dialog(f: &mut Frame, theme: &Theme, area: Rect, d: &HubDialog) {
    let width = (area.width as usize * 9 / 10).clamp(10, 110);
    let inner = width.saturating_sub(4);
    let fit = |s: &str| ellipsize(s, inner);
    let model = if d.model.is_empty() {
        String::new()
    } else {
        format!(" ({})", shown(&d.model))
    };
    let mut lines = vec![
        Line::styled(
            fit(&format!("{}: {}{model}", d.loc.name(), d.expect.describe())),
            theme.title(),
        ),
        Line::styled(fit(&d.loc.note), theme.muted()),
    ];
    if d.offline {
        lines.push(Line::styled(
            fit("offline (HF_HUB_OFFLINE): only the hub cache is used, nothing is downloaded"),
            theme.warn(),
        ));
    }
    lines.push(Line::raw(""));
    let footer = match d.step {
        Step::Repo => {
            repo_step(&mut lines, theme, d, inner);
            "Enter list files · ↑↓ known sources · Ctrl-U clear · Esc cancel"
        }
        Step::Files => {
            let room = area.height.saturating_sub(lines.len() as u16 + 6) as usize;
            files_step(&mut lines, theme, d, inner, room);
            "Enter choose · ↑↓ select · r list again · Esc back"
        }
        Step::Dest => {
            dest_step(&mut lines, theme, d, inner);
            "Enter download · ↑↓ cache / directory · type a directory · Esc back"
        }
    };
    if let Some(e) = &d.error {
        lines.push(Line::styled(fit(&shown(e)), theme.error()));
    }
    // A fixed width, so the dialog does not jump between steps.
    lines.push(Line::raw(" ".repeat(width.saturating_sub(6))));
    popup(
        f,
        theme,
        area,
        "Download from the Hugging Face Hub",
        lines,
        footer,
    );
}

fn repo_step(lines: &mut Vec<Line>, theme: &Theme, d: &HubDialog, inner: usize) {
    lines.push(Line::from(vec![
        Span::styled("repo  > ", theme.accent()),
        Span::raw(ellipsize(&shown(&d.repo), inner.saturating_sub(9))),
        cursor(theme),
    ]));
    lines.push(Line::raw(""));
    if d.sources.is_empty() {
        lines.push(Line::styled(
            ellipsize(
                "No known-good source for this key: type owner/name (settings: [[hub_sources]]).",
                inner,
            ),
            theme.muted(),
        ));
        return;
    }
    lines.push(Line::styled(
        ellipsize(
            &format!(
                "Known-good sources for {} {}:",
                shown(&d.model),
                d.loc.key()
            ),
            inner,
        ),
        theme.muted(),
    ));
    for (i, s) in d.sources.iter().enumerate() {
        let mut text = format!(" {}", shown(&s.repo));
        if let Some(p) = &s.path {
            text.push_str(&format!("  {}", shown(p)));
        }
        if let Some(n) = &s.note {
            text.push_str(&format!("  ({})", shown(n)));
        }
        let mut line = Line::raw(ellipsize(&text, inner));
        if d.source_sel == Some(i) {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
}

fn files_step(lines: &mut Vec<Line>, theme: &Theme, d: &HubDialog, inner: usize, room: usize) {
    let mut head = shown(&d.repo);
    if let Some(l) = &d.listing {
        head.push_str(&format!(
            "  {} files, {}",
            l.files.len(),
            format_bytes(l.total_bytes())
        ));
    }
    let mut spans = vec![Span::styled(ellipsize(&head, inner), theme.accent())];
    if d.listing.as_ref().is_some_and(|l| l.from_cache) {
        spans.push(Span::styled(
            if d.offline {
                "  (from the cache: offline)"
            } else {
                "  (from the cache: the hub did not answer)"
            },
            theme.warn(),
        ));
    }
    lines.push(Line::from(spans));
    if d.loading {
        lines.push(Line::styled("listing…", theme.muted()));
        return;
    }
    if d.choices.is_empty() {
        return;
    }
    lines.push(Line::styled(
        ellipsize("★ fits the key (best first); then everything else", inner),
        theme.muted(),
    ));
    let name_w = d
        .choices
        .iter()
        .map(|c| c.label().chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, inner.saturating_sub(24).max(10));
    let sel = d.sel.min(d.choices.len() - 1);
    for i in window(d.choices.len(), sel, room.clamp(3, 20)) {
        let c = &d.choices[i];
        let mark = if c.suggested() { "★" } else { " " };
        let label = ellipsize(&shown(&c.label()), name_w);
        let files = if c.kind == SuggestionKind::File {
            String::new()
        } else {
            format!("{} files  ", c.files)
        };
        let why = c.why.as_deref().map(shown).unwrap_or_default();
        let text = format!(
            "{mark} {label:<name_w$}  {:>9}  {files}{why}",
            format_bytes(c.bytes)
        );
        let style = if c.suggested() {
            theme.accent()
        } else {
            Style::default()
        };
        let mut line = Line::styled(ellipsize(&text, inner), style);
        if i == sel {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
}

fn dest_step(lines: &mut Vec<Line>, theme: &Theme, d: &HubDialog, inner: usize) {
    let Some(c) = d.chosen() else {
        return;
    };
    let files = if c.kind == SuggestionKind::File {
        String::new()
    } else {
        format!(", {} files", c.files)
    };
    lines.push(Line::styled(
        ellipsize(
            &format!(
                "{} ({}{files}) from {} into:",
                shown(&c.label()),
                format_bytes(c.bytes),
                shown(&d.repo)
            ),
            inner,
        ),
        theme.title(),
    ));
    let cache = if d.cache_dir.as_os_str().is_empty() {
        "the hub cache".to_string()
    } else {
        display_path(&d.cache_dir)
    };
    let mut a = Line::raw(ellipsize(
        &format!(" the hub cache  {cache}  (shared with Python's huggingface_hub)"),
        inner,
    ));
    let mut b = Line::from(vec![
        Span::raw(" a directory    > "),
        Span::raw(ellipsize(&shown(&d.dir), inner.saturating_sub(19))),
        if d.to_dir {
            cursor(theme)
        } else {
            Span::raw("")
        },
    ]);
    if d.to_dir {
        b = b.style(theme.selected());
    } else {
        a = a.style(theme.selected());
    }
    lines.push(a);
    lines.push(b);
    lines.push(Line::raw(""));
    let what = match c.kind {
        SuggestionKind::File => "the file",
        SuggestionKind::Folder => "the folder",
        SuggestionKind::Repo => "the repo's folder",
    };
    lines.push(Line::styled(
        ellipsize(
            &format!(
                "When done, {} = {what} (in the editor when the config is open, else on disk).",
                d.loc.name()
            ),
            inner,
        ),
        theme.muted(),
    ));
    lines.push(Line::styled(
        ellipsize(
            "Files already in the cache are not downloaded again; F6 shows the downloads.",
            inner,
        ),
        theme.muted(),
    ));
}

// ---------------------------------------------------------------------------------------------
// The downloads window

fn state_label(s: JobState) -> &'static str {
    match s {
        JobState::Queued => "queued",
        JobState::Listing => "listing",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn state_style(theme: &Theme, s: JobState) -> Style {
    match s {
        JobState::Done => theme.ok(),
        JobState::Failed => theme.error(),
        JobState::Cancelled => theme.warn(),
        _ => theme.accent(),
    }
}

fn file_label(s: FileState) -> &'static str {
    match s {
        FileState::Pending => "pending",
        FileState::Checking => "checking",
        FileState::Downloading => "downloading",
        FileState::Cached => "in the cache",
        FileState::Done => "done",
        FileState::Failed => "failed",
        FileState::Cancelled => "cancelled",
    }
}

/// "[██████░░░░]" for a share of `done` in `total`.
fn bar(done: u64, total: u64, w: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as f64 / total as f64) * w as f64).round() as usize
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(w - filled.min(w)))
}

fn pct(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(0)
}

/// What a job brings: the file, the folder, or the whole repo.
fn what(j: &JobStatus) -> String {
    match &j.request.selection {
        Selection::Files(v) if v.len() == 1 => shown(&v[0]),
        Selection::Files(v) => format!("{} files", v.len()),
        Selection::Folder(p) => format!("{}/", shown(p)),
        Selection::All => "the whole repo".into(),
    }
}

/// The progress part of a job's or a file's line.
fn progress(done: u64, total: u64, rate: f64, eta_secs: Option<f64>) -> String {
    let mut s = if total > 0 {
        format!(
            "{} / {} {:>3}%",
            format_bytes(done),
            format_bytes(total),
            pct(done, total)
        )
    } else {
        format_bytes(done)
    };
    if rate > 0.0 {
        s.push_str(&format!("  {}/s", format_bytes(rate as u64)));
    }
    if let Some(e) = eta_secs {
        s.push_str(&format!("  ETA {}", eta(e)));
    }
    s
}

/// `text` broken at spaces into lines of at most `width` characters, at most `max` of them
/// (the last one cut with an ellipsis when there is more).
fn wrap(text: &str, width: usize, max: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let n = cur.chars().count();
        if n > 0 && n + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    if lines.len() > max {
        let rest = lines.split_off(max - 1).join(" ");
        lines.push(rest);
    }
    lines.into_iter().map(|l| ellipsize(&l, width)).collect()
}

/// `head` + `middle` + `tail` in `width` columns: the middle (a name) gives way first.
fn squeeze(head: &str, middle: &str, tail: &str, width: usize) -> String {
    let fixed = head.chars().count() + tail.chars().count();
    if fixed + 8 > width {
        return ellipsize(&format!("{head}{middle}{tail}"), width);
    }
    format!("{head}{}{tail}", ellipsize(middle, width - fixed))
}

fn job_lines<'a>(
    theme: &Theme,
    j: &JobStatus,
    selected: bool,
    expanded: bool,
    inner: usize,
) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    let arrow = if expanded { "▾" } else { "▸" };
    let head = format!("{arrow} {:<9} ", state_label(j.state));
    let running = matches!(j.state, JobState::Running | JobState::Listing);
    let mut tail = String::new();
    if j.total > 0 || running {
        tail.push_str("  ");
        if running && j.total > 0 {
            tail.push_str(&format!("{} ", bar(j.done, j.total, 12)));
        }
        tail.push_str(&progress(j.done, j.total, j.rate, j.eta_secs));
    }
    let middle = format!("{}  {}", shown(&j.request.repo), what(j));
    let text = squeeze(&head, &middle, &tail, inner);
    // Styled in three parts when it fits as built; one plain string when cut.
    let mut line = if text == format!("{head}{middle}{tail}") {
        Line::from(vec![
            Span::raw(format!("{arrow} ")),
            Span::styled(
                format!("{:<9} ", state_label(j.state)),
                state_style(theme, j.state),
            ),
            Span::raw(middle),
            Span::styled(tail, theme.muted()),
        ])
    } else {
        Line::raw(text)
    };
    if selected {
        line = line.style(theme.selected());
    }
    out.push(line);
    match (&j.error, j.state) {
        (Some(e), JobState::Failed) => {
            let text = format!(
                "{}: {}",
                if e.resumable() {
                    "r resumes"
                } else {
                    "r tries again"
                },
                shown(&e.to_string()),
            );
            // The sentence says what to do (a URL, a variable): up to three lines of it.
            for l in wrap(&text, inner.saturating_sub(4), 3) {
                out.push(Line::styled(format!("    {l}"), theme.error()));
            }
        }
        (_, JobState::Cancelled) => out.push(Line::styled(
            ellipsize("    cancelled: the partial file stays, r resumes", inner),
            theme.muted(),
        )),
        _ => {}
    }
    if !expanded {
        return out;
    }
    if let Some(p) = &j.local_path {
        out.push(Line::styled(
            ellipsize(&format!("    → {}", shown(&p.display().to_string())), inner),
            theme.ok(),
        ));
    }
    if j.files.is_empty() {
        out.push(Line::styled(
            "    (the file list comes with the repo's listing)",
            theme.muted(),
        ));
    }
    for file in &j.files {
        let head = format!("    {:<13}", file_label(file.state));
        let size = file.size.unwrap_or(0);
        let mut tail = if file.state == FileState::Cached {
            format!("  {}", format_bytes(size))
        } else {
            format!("  {}", progress(file.done, size, file.rate, file.eta_secs))
        };
        if file.resumed_from > 0 {
            tail.push_str(&format!(
                "  (resumed at {})",
                format_bytes(file.resumed_from)
            ));
        }
        let style = match file.state {
            FileState::Failed => theme.error(),
            FileState::Cached | FileState::Done => theme.ok(),
            FileState::Downloading | FileState::Checking => theme.accent(),
            _ => theme.muted(),
        };
        out.push(Line::styled(
            squeeze(&head, &shown(&file.path), &tail, inner),
            style,
        ));
    }
    out
}

fn downloads_page(s: &State, theme: &Theme, inner: usize, rows: usize) -> Vec<Line<'static>> {
    let h = &s.hub;
    let mut lines = Vec::new();
    if h.jobs.is_empty() {
        lines.push(Line::styled(
            ellipsize(
                "No downloads yet. F4 on a path key in the Config editor starts one (or `dpgui fetch`).",
                inner,
            ),
            theme.muted(),
        ));
        return lines;
    }
    let head = match h.summary() {
        Some(sum) => sum,
        None => format!(
            "{} download{}, none running",
            h.jobs.len(),
            if h.jobs.len() == 1 { "" } else { "s" }
        ),
    };
    lines.push(Line::styled(ellipsize(&head, inner), theme.title()));
    let sel = h.view.sel.min(h.jobs.len() - 1);
    let blocks: Vec<Vec<Line>> = h
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| job_lines(theme, j, i == sel, h.view.expanded.contains(&j.id), inner))
        .collect();
    // From the selected job back as far as the rows allow, then on after it.
    let room = rows.saturating_sub(1);
    let mut first = sel;
    let mut used = blocks[sel].len();
    while first > 0 && used + blocks[first - 1].len() <= room {
        first -= 1;
        used += blocks[first].len();
    }
    for b in &blocks[first..] {
        if lines.len() + b.len() > rows && lines.len() > 1 {
            break;
        }
        lines.extend(b.iter().cloned());
    }
    lines
}

fn cache_page(s: &State, theme: &Theme, inner: usize, rows: usize) -> Vec<Line<'static>> {
    let h = &s.hub;
    let dir = if h.cache_dir.as_os_str().is_empty() {
        "the hub cache".to_string()
    } else {
        display_path(&h.cache_dir)
    };
    let mut lines = Vec::new();
    let list = match &h.cache {
        None => {
            lines.push(Line::styled(format!("{dir}: scanning…"), theme.muted()));
            return lines;
        }
        Some(Err(e)) => {
            lines.push(Line::styled(
                ellipsize(&format!("{dir}: {}", shown(e)), inner),
                theme.error(),
            ));
            return lines;
        }
        Some(Ok(l)) => l,
    };
    let total: u64 = list.iter().map(|r| r.size).sum();
    lines.push(Line::styled(
        ellipsize(
            &format!(
                "{dir}: {} repo{}, {}{}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                format_bytes(total),
                if h.scanning { "  (scanning…)" } else { "" }
            ),
            inner,
        ),
        theme.title(),
    ));
    if list.is_empty() {
        lines.push(Line::styled(
            "Nothing cached yet: downloads to the hub cache appear here.",
            theme.muted(),
        ));
        return lines;
    }
    let name_w = list
        .iter()
        .map(|r| r.key().label().chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, inner.saturating_sub(50).max(10));
    lines.push(Line::styled(
        ellipsize(
            &format!(
                "  {:<name_w$}  {:>9}  {:>6}  {:<14}  {:>9}  {}",
                "repo", "size", "files", "revisions", "last used", "partial"
            ),
            inner,
        ),
        theme.muted().add_modifier(Modifier::BOLD),
    ));
    let now = s.now();
    let sel = h.view.cache_sel.min(list.len() - 1);
    for i in window(list.len(), sel, rows.saturating_sub(2)) {
        let r = &list[i];
        let revs = if r.refs.is_empty() {
            r.revisions.len().to_string()
        } else {
            format!("{} ({})", r.revisions.len(), shown(&r.refs.join(",")))
        };
        let used = r
            .last_used
            .and_then(|t| now.duration_since(t).ok())
            .map(|d| format!("{} ago", format_age(d)))
            .unwrap_or_else(|| "?".into());
        let partial = if r.partial_bytes > 0 {
            format_bytes(r.partial_bytes)
        } else {
            String::new()
        };
        let text = format!(
            "  {:<name_w$}  {:>9}  {:>6}  {:<14}  {:>9}  {partial}",
            // A dataset may share its id with a model: its row names its type.
            ellipsize(&shown(&r.key().label()), name_w),
            format_bytes(r.size),
            r.files,
            ellipsize(&revs, 14),
            used
        );
        let mut line = Line::raw(ellipsize(&text, inner));
        if i == sel {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    lines
}

pub fn draw_downloads(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let w = (area.width.saturating_mul(9) / 10).max(area.width.min(40));
    let h = (area.height.saturating_mul(8) / 10).max(area.height.min(10));
    let r = centered(area, w, h);
    if r.width < 3 || r.height < 3 {
        return;
    }
    f.render_widget(Clear, r);
    let page = s.hub.view.page;
    let tab = |p: Page, name: &'static str| {
        Span::styled(
            format!(" {name} "),
            if p == page {
                theme.tab_active()
            } else {
                theme.muted()
            },
        )
    };
    let footer = match page {
        Page::Downloads => {
            " ↑↓ select · Enter files · x cancel · r resume · C clear ended · ← → cache · Esc close "
        }
        Page::Cache => " ↑↓ select · D delete (asks) · r rescan · ← → downloads · Esc close ",
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Line::from(vec![
            Span::raw(" "),
            tab(Page::Downloads, "Downloads"),
            Span::raw("│"),
            tab(Page::Cache, "Hub cache"),
            Span::raw(" "),
        ]))
        .title_bottom(Line::styled(footer, theme.muted()));
    let inner = block.inner(r);
    let (cols, rows) = (inner.width as usize, inner.height as usize);
    let lines = match page {
        Page::Downloads => downloads_page(s, theme, cols, rows),
        Page::Cache => cache_page(s, theme, cols, rows),
    };
    f.render_widget(Paragraph::new(lines).block(block).style(theme.base()), r);
    if let Some(repo) = &s.hub.view.confirm {
        let size = s
            .hub
            .cache
            .as_ref()
            .and_then(|c| c.as_ref().ok())
            .and_then(|l| {
                l.iter()
                    .find(|r| r.kind == repo.kind && r.repo == repo.repo)
            })
            .map(|r| format_bytes(r.size))
            .unwrap_or_default();
        popup(
            f,
            theme,
            area,
            "Delete from the hub cache?",
            vec![
                Line::styled(
                    format!(
                        "Delete the {} {} ({size}) from the hub cache?",
                        shown(&repo.kind),
                        shown(&repo.repo)
                    ),
                    theme.warn(),
                ),
                Line::raw("Its files, snapshots and partial downloads go; Python's"),
                Line::raw("huggingface_hub shares this cache and will download it again."),
                Line::raw(""),
                Line::styled("y: delete    any other key: keep it", theme.title()),
            ],
            "y delete · n keep",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_the_last_line() {
        assert_eq!(
            wrap("one two three four", 9, 3),
            vec!["one two", "three", "four"]
        );
        let w = wrap("aaaa bbbb cccc dddd eeee", 9, 2);
        assert_eq!(w[0], "aaaa bbbb");
        assert_eq!(w.len(), 2);
        assert!(w[1].ends_with('…'), "{w:?}");
    }

    #[test]
    fn squeeze_cuts_the_middle_first() {
        // 12 columns: "[" and "]" leave 10 for the name, its last one the ellipsis.
        assert_eq!(squeeze("[", "abcdefghijklmnop", "]", 12), "[abcdefghi…]");
        assert_eq!(squeeze("[", "abc", "]", 12), "[abc]");
    }
}
