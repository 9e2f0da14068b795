//! The Datasets tab: dataset list and summary, a directory's buckets and problems, the media
//! browser (caption + preview) and the cache view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::datasets::problems::plural;
use crate::datasets::report::{DatasetReport, DirectoryReport, Health};
use crate::datasets::{MediaKind, Problem, Severity};
use crate::tui::app::State;
use crate::tui::datasets::{Ask, Browser, Source, SourceKey, View, cache_rows, detected_gpus};
use crate::tui::theme::Theme;
use crate::units::{ellipsize, escape_controls, format_bytes};

fn esc(s: &str) -> String {
    escape_controls(s, false).into_owned()
}

fn block<'a>(theme: &Theme, title: String, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Line::styled(format!(" {title} "), theme.title()))
}

fn health_style(theme: &Theme, h: Health) -> Style {
    match h {
        Health::Ok => theme.ok(),
        Health::Notes => theme.info(),
        Health::Warnings => theme.warn(),
        Health::Fatal | Health::Broken => theme.error(),
    }
}

fn severity_style(theme: &Theme, s: Severity) -> Style {
    match s {
        Severity::Fatal => theme.error(),
        Severity::Warning => theme.warn(),
        Severity::Info => theme.info(),
    }
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    if area.width < 20 || area.height < 5 {
        f.render_widget(
            Paragraph::new("window too small").style(theme.muted()),
            area,
        );
        return;
    }
    match &s.datasets.view {
        View::List => list(f, s, theme, area),
        View::Directory { dir, problem } => directory(f, s, theme, area, *dir, *problem),
        View::Browser(b) => browser(f, s, theme, area, b),
        View::Cache { row } => cache(f, s, theme, area, *row),
    }
    if let Some(ask) = &s.datasets.ask {
        ask_box(f, theme, area, ask);
    }
}

fn ask_box(f: &mut Frame, theme: &Theme, area: Rect, ask: &Ask) {
    let (title, lines) = match ask {
        Ask::DeleteCache { dir, name, bytes } => (
            "Delete cache",
            vec![
                Line::from(format!(
                    "Delete {} ({})?",
                    esc(&dir.join("cache").join(name).display().to_string()),
                    format_bytes(*bytes)
                )),
                Line::from("diffusion-pipe rebuilds it on the next run (slow for big datasets)."),
                Line::styled("y delete · any other key keeps it", theme.muted()),
            ],
        ),
        Ask::AddDirectory(text) => (
            "Add a directory",
            vec![
                Line::from(format!("path: {}▏", esc(text))),
                Line::styled(
                    "⏎ add (scanned with diffusion-pipe's defaults) · Esc cancel",
                    theme.muted(),
                ),
            ],
        ),
    };
    let w = area.width.min(90);
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height.saturating_sub(h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, title.into(), true))
            .style(theme.base())
            .wrap(Wrap { trim: false }),
        r,
    );
}

fn source_row(theme: &Theme, src: &Source, width: usize) -> Line<'static> {
    let (mark, style, note) = if let Some(c) = &src.scan {
        let (d, n) = c.counts();
        ("…", theme.info(), format!("scanning {d}/{n}"))
    } else if let Some(r) = &src.report {
        let h = r.health();
        let errors: usize = r
            .directories
            .iter()
            .map(|d| {
                d.problems
                    .iter()
                    .filter(|p| p.severity <= Severity::Warning)
                    .count()
            })
            .sum();
        let (i, v, _) = r.totals();
        let note = match h {
            Health::Broken => "cannot scan".to_string(),
            _ if errors > 0 => format!(
                "{i} img {v} vid · {}",
                plural(errors, "problem", "problems")
            ),
            _ => format!("{i} img {v} vid · ok"),
        };
        ("●", health_style(theme, h), note)
    } else if let Some(e) = &src.error {
        ("✗", theme.error(), ellipsize(e, 40))
    } else {
        ("○", theme.muted(), "not scanned".into())
    };
    let kind = match src.key {
        SourceKey::Config(_) => "",
        SourceKey::Directory(_) => " (dir)",
    };
    let name = format!("{}{kind}", esc(&src.name()));
    let name_w = width.saturating_sub(note.chars().count() + 4).max(8);
    Line::from(vec![
        Span::styled(format!("{mark} "), style),
        Span::raw(format!("{:<name_w$}", ellipsize(&name, name_w))),
        Span::styled(format!(" {note}"), theme.muted()),
    ])
}

fn list(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let d = &s.datasets;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(area);
    let inner_w = left.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    if !d.loaded {
        lines.push(Line::styled("looking for datasets…", theme.muted()));
    } else if d.sources.is_empty() {
        lines.extend([
            Line::from("No dataset configs found."),
            Line::from(""),
            Line::styled(
                "dpgui lists the dataset configs named by the training configs of the",
                theme.muted(),
            ),
            Line::styled(
                "workspace (config_dirs), dataset configs found there, and directories",
                theme.muted(),
            ),
            Line::styled(
                "you add: press a. New configs: Config tab (3), n.",
                theme.muted(),
            ),
        ]);
    }
    let visible = left.height.saturating_sub(2) as usize;
    let top = d.selected.saturating_sub(visible.saturating_sub(1));
    for (i, src) in d.sources.iter().enumerate().skip(top).take(visible) {
        let mut l = source_row(theme, src, inner_w);
        if i == d.selected {
            l = l.style(theme.selected());
        }
        lines.push(l);
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(
                theme,
                format!("Datasets ({})", d.sources.len()),
                true,
            ))
            .style(theme.base()),
        left,
    );
    summary(f, s, theme, right);
}

fn progress_line(theme: &Theme, src: &Source, width: usize) -> Option<Line<'static>> {
    let c = src.scan.as_ref()?;
    let (done, total) = c.counts();
    let frac = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64
    };
    let bar_w = width.saturating_sub(34).clamp(5, 40);
    let filled = ((frac * bar_w as f64).round() as usize).min(bar_w);
    Some(Line::from(vec![
        Span::styled("scanning ", theme.info()),
        Span::styled("█".repeat(filled), theme.accent()),
        Span::styled("░".repeat(bar_w - filled), theme.muted()),
        Span::raw(format!(" {done}/{total} files · x cancels")),
    ]))
}

fn summary(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let d = &s.datasets;
    let Some(src) = d.current() else {
        f.render_widget(
            Paragraph::new(vec![
                Line::from("a add a directory · F5 look again"),
                Line::styled(
                    "Keys: ↑↓ select ⏎ open r rescan c caches t training config +/- GPUs",
                    theme.muted(),
                ),
            ])
            .block(block(theme, "Summary".into(), false))
            .style(theme.base()),
            area,
        );
        return;
    };
    let w = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(vec![
        Span::styled("config ", theme.muted()),
        Span::raw(esc(&src.key.path().display().to_string())),
    ]));
    // The count the report was made with, once there is one.
    let gpus = src
        .report
        .as_ref()
        .and_then(|r| r.training.as_ref().map(|t| t.gpus))
        .unwrap_or_else(|| d.gpu_count(detected_gpus(s)));
    let training = match src.training_config() {
        Some(t) => format!("{} (t: next)", esc(&t.display().to_string())),
        None if src.training.is_empty() => "none names this dataset".into(),
        None => "none chosen (t: next)".into(),
    };
    lines.push(Line::from(vec![
        Span::styled("training ", theme.muted()),
        Span::raw(training),
        Span::styled("  GPUs ", theme.muted()),
        Span::raw(format!("{gpus} (+/-)")),
    ]));
    if let Some(p) = progress_line(theme, src, w) {
        lines.push(p);
    }
    if let Some(e) = &src.error {
        lines.push(Line::styled(esc(e), theme.error()));
    }
    match &src.report {
        None if src.scan.is_none() && src.error.is_none() => {
            lines.push(Line::styled("not scanned yet (r)", theme.muted()))
        }
        None => {}
        Some(r) => report_lines(&mut lines, theme, r, w),
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, esc(&src.name()), false))
            .style(theme.base())
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn report_lines(lines: &mut Vec<Line<'static>>, theme: &Theme, r: &DatasetReport, w: usize) {
    for d in &r.config_errors {
        lines.push(Line::from(vec![
            Span::styled(format!("  ✗ line {}: ", d.line), theme.error()),
            Span::raw(ellipsize(&esc(&d.message), w.saturating_sub(14))),
        ]));
    }
    for d in &r.directories {
        lines.push(Line::from(""));
        lines.push(Line::from(vec![
            Span::styled("[[directory]] ", theme.muted()),
            Span::styled(esc(&d.path_label()), health_style(theme, d.health())),
        ]));
        match &d.scan {
            Err(e) => lines.push(Line::styled(format!("  {}", esc(e)), theme.error())),
            Ok(_) => {
                lines.push(Line::from(format!(
                    "  {} · {} · {} · {} trained · ×{} repeats",
                    plural(d.images, "image", "images"),
                    plural(d.videos, "video", "videos"),
                    plural(d.captions, "caption", "captions"),
                    d.trained,
                    d.planned.effective.num_repeats
                )));
                for p in &d.problems {
                    lines.push(problem_line(theme, p, w));
                }
            }
        }
    }
    lines.push(Line::from(""));
    bucket_lines(lines, theme, r, None, w);
}

fn problem_line(theme: &Theme, p: &Problem, w: usize) -> Line<'static> {
    let sev = p.severity;
    let mark = match sev {
        Severity::Fatal => "✗",
        Severity::Warning => "!",
        Severity::Info => "i",
    };
    Line::from(vec![
        Span::styled(format!("  {mark} "), severity_style(theme, sev)),
        Span::raw(ellipsize(&esc(&p.message), w.saturating_sub(4))),
    ])
}

/// The bucket histogram: one bar per size bucket (`dir`: only that directory's items).
fn bucket_lines(
    lines: &mut Vec<Line<'static>>,
    theme: &Theme,
    r: &DatasetReport,
    dir: Option<usize>,
    w: usize,
) {
    let rows: Vec<_> = r
        .table
        .rows
        .iter()
        .map(|row| {
            let n = match dir {
                Some(i) => row.per_directory.get(i).copied().unwrap_or(0),
                None => row.items,
            };
            (row, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    if rows.is_empty() {
        lines.push(Line::styled(
            if r.config.is_none() {
                "no buckets: a directory added on its own has no resolutions (a dataset config sets them)"
            } else {
                "no buckets: nothing to train on (see the problems)"
            },
            theme.muted(),
        ));
    } else {
        lines.push(Line::styled(
            format!(
                "Buckets (items after num_repeats; sizes rounded to multiples of {})",
                r.multiple
            ),
            theme.title(),
        ));
    }
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bar_w = w.saturating_sub(44).clamp(4, 50);
    for (row, n) in &rows {
        let len = ((*n as f64 / max as f64) * bar_w as f64).ceil() as usize;
        let (style, note) = if row.global_batch.is_some() && row.used == 0 {
            (
                theme.error(),
                format!(" dropped (< batch {})", row.global_batch.unwrap_or(0)),
            )
        } else if row.dropped > 0 {
            (theme.warn(), format!(" −{} cut", row.dropped))
        } else {
            (theme.accent(), String::new())
        };
        lines.push(Line::from(vec![
            Span::raw(format!(
                "  {:>5}x{:<5}{:>4}f ar {:>5.2} ",
                row.bucket.width, row.bucket.height, row.bucket.frames, row.bucket.ar
            )),
            Span::styled("■".repeat(len.min(bar_w)), style),
            Span::raw(format!(" {n}")),
            Span::styled(note, style),
        ]));
    }
    if let Some(t) = &r.training
        && dir.is_none()
    {
        let (items, dropped) = r.bucket_totals();
        let gb = r
            .global_batch_size()
            .map_or("per bucket".to_string(), |g| g.to_string());
        lines.push(Line::from(vec![
            Span::styled("steps per epoch ", theme.muted()),
            Span::styled(
                r.table.steps_per_epoch.unwrap_or(0).to_string(),
                theme.title(),
            ),
            Span::styled(
                format!(
                    " · global batch {gb} · {dropped} of {items} items dropped · {} GPU(s)",
                    t.gpus
                ),
                theme.muted(),
            ),
        ]));
    }
}

fn directory(f: &mut Frame, s: &State, theme: &Theme, area: Rect, dir: usize, sel: usize) {
    let Some(r) = s.datasets.report() else {
        return;
    };
    let Some(d) = r.directories.get(dir) else {
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
    dir_header(f, s, theme, head, r, d, dir);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
    let w = left.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    if d.problems.is_empty() {
        lines.push(Line::styled("no problems found", theme.ok()));
    }
    let visible = left.height.saturating_sub(2) as usize;
    let top = sel.saturating_sub(visible.saturating_sub(1));
    for (i, p) in d.problems.iter().enumerate().skip(top).take(visible) {
        let mut l = Line::from(vec![
            Span::styled(
                format!("{:>5} ", p.files.len()),
                severity_style(theme, p.severity),
            ),
            Span::raw(ellipsize(&esc(&p.message), w.saturating_sub(6))),
        ]);
        if i == sel {
            l = l.style(theme.selected());
        }
        lines.push(l);
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, "Problems (⏎ shows the files)".into(), true))
            .style(theme.base()),
        left,
    );
    let mut lines: Vec<Line> = Vec::new();
    bucket_lines(
        &mut lines,
        theme,
        r,
        Some(dir),
        right.width.saturating_sub(2) as usize,
    );
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, "Buckets".into(), false))
            .style(theme.base()),
        right,
    );
}

fn dir_header(
    f: &mut Frame,
    s: &State,
    theme: &Theme,
    area: Rect,
    r: &DatasetReport,
    d: &DirectoryReport,
    dir: usize,
) {
    let e = &d.planned.effective;
    let res: Vec<String> = e
        .resolutions
        .iter()
        .map(|r| format!("{}", r.side()))
        .collect();
    let mut lines = vec![Line::from(vec![
        Span::raw(format!(
            "{} · {} · {} · {} trained",
            plural(d.images, "image", "images"),
            plural(d.videos, "video", "videos"),
            plural(d.captions, "caption", "captions"),
            d.trained
        )),
        Span::styled(
            format!(
                "  resolutions [{}] · frame buckets {:?} · AR buckets {} · ×{}",
                res.join(", "),
                e.frame_buckets,
                if e.enable_ar_bucket { "on" } else { "off" },
                e.num_repeats
            ),
            theme.muted(),
        ),
    ])];
    if let Ok(sc) = &d.scan {
        let mut extra = Vec::new();
        if d.videos > 0 {
            extra.push(format!(
                "video frames: {}",
                crate::datasets::report::describe_probe(&sc.video_probe)
            ));
        }
        for c in &sc.caches {
            extra.push(crate::datasets::report::describe_cache(c));
        }
        if sc.caches.is_empty() {
            extra.push("no cache yet".into());
        }
        lines.push(Line::styled(esc(&extra.join(" · ")), theme.muted()));
    }
    if let Some(src) = s.datasets.current()
        && let Some(p) = progress_line(theme, src, area.width as usize)
    {
        lines.push(p);
    }
    let title = format!(
        "[[directory]] {}/{}: {}",
        dir + 1,
        r.directories.len(),
        esc(&d.path_label())
    );
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, title, false))
            .style(theme.base())
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn browser(f: &mut Frame, s: &State, theme: &Theme, area: Rect, b: &Browser) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(area);
    let entry = |name: &str| {
        s.datasets
            .report()
            .and_then(|r| r.directories.get(b.dir))
            .and_then(|d| d.scan.as_ref().ok())
            .and_then(|sc| sc.media.iter().find(|m| m.name == name))
    };
    let w = left.width.saturating_sub(2) as usize;
    let visible = left.height.saturating_sub(2) as usize;
    let top = b.selected.saturating_sub(visible.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    for (i, name) in b.files.iter().enumerate().skip(top).take(visible) {
        let info = match entry(name) {
            Some(m) => match &m.header {
                Ok(h) => match m.kind {
                    MediaKind::Image => format!("{}x{}", h.width, h.height),
                    MediaKind::Video => format!(
                        "{}x{} {}f",
                        h.width,
                        h.height,
                        h.source_frames.map_or("?".into(), |f| f.to_string())
                    ),
                },
                Err(_) => "unreadable".into(),
            },
            None => String::new(),
        };
        let name_w = w.saturating_sub(info.len() + 1).max(4);
        let mut l = Line::from(vec![
            Span::raw(format!("{:<name_w$}", ellipsize(&esc(name), name_w))),
            Span::styled(format!(" {info}"), theme.muted()),
        ]);
        if i == b.selected {
            l = l.style(theme.selected());
        }
        lines.push(l);
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(
                theme,
                format!("{} ({}/{})", esc(&b.title), b.selected + 1, b.files.len()),
                b.edit.is_none(),
            ))
            .style(theme.base()),
        left,
    );
    let cap_h = (right.height / 3).clamp(5, 14);
    let [top_r, cap] = if b.show_preview {
        Layout::vertical([Constraint::Min(3), Constraint::Length(cap_h)]).areas(right)
    } else {
        Layout::vertical([Constraint::Length(0), Constraint::Min(3)]).areas(right)
    };
    if b.show_preview {
        preview(f, s, theme, top_r, b);
    }
    caption(f, theme, cap, b);
}

fn preview(f: &mut Frame, s: &State, theme: &Theme, area: Rect, b: &Browser) {
    let name = b.files.get(b.selected).map(|n| esc(n)).unwrap_or_default();
    let title = format!(
        "{name} · {} (v hides)",
        crate::tui::datasets::preview::current_protocol()
    );
    let blk = block(theme, title, false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    match &s.datasets.preview {
        None => f.render_widget(Paragraph::new("loading…").style(theme.muted()), inner),
        Some(p) => {
            let drawn = p.with_protocol(inner.as_size(), |proto| {
                f.render_widget(ratatui_image::Image::new(proto), inner);
            });
            if let Err(e) = drawn {
                f.render_widget(
                    Paragraph::new(esc(&e))
                        .style(theme.muted())
                        .wrap(Wrap { trim: true }),
                    inner,
                );
            }
        }
    }
}

fn caption(f: &mut Frame, theme: &Theme, area: Rect, b: &Browser) {
    let (title, body): (String, Option<String>) = match &b.caption {
        None => ("Caption".into(), Some("…".into())),
        Some(c) => {
            let name = c
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let t = if !c.exists && b.edit.is_none() {
                format!("no {name} · e writes one")
            } else if c.from_json {
                format!("Caption from {name} (read-only here)")
            } else if b.edit.is_some() {
                format!("{name} · Ctrl-S save · Esc done")
            } else {
                format!("{name} · e edit")
            };
            let body = match &c.text {
                Ok(_) if !c.exists && b.edit.is_none() => Some(
                    "(no caption file: diffusion-pipe skips this file while skip_empty_caption is true, the default)"
                        .into(),
                ),
                Ok(t) if t.trim().is_empty() && b.edit.is_none() => {
                    Some("(empty: diffusion-pipe trains this file with an empty caption unless skip_empty_caption)".into())
                }
                Ok(t) => Some(t.clone()),
                Err(e) => Some(format!("({e})")),
            };
            (esc(&t), body)
        }
    };
    let blk = block(theme, title, b.edit.is_some());
    if let Some(ed) = &b.edit {
        let inner = blk.inner(area);
        f.render_widget(blk, area);
        f.render_widget(ed.widget(), inner);
        if b.confirm_discard {
            let r = Rect::new(
                inner.x,
                inner.y + inner.height.saturating_sub(1),
                inner.width,
                1,
            );
            f.render_widget(
                Paragraph::new("unsaved caption: s save · d discard · any other key keeps editing")
                    .style(theme.warn().add_modifier(Modifier::BOLD)),
                r,
            );
        }
        return;
    }
    f.render_widget(
        Paragraph::new(esc(&body.unwrap_or_default()))
            .block(blk)
            .style(theme.base())
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn cache(f: &mut Frame, s: &State, theme: &Theme, area: Rect, row: usize) {
    let Some(r) = s.datasets.report() else {
        return;
    };
    let rows = cache_rows(r);
    let mut lines: Vec<Line> = Vec::new();
    if rows.is_empty() {
        lines.push(Line::from(
            "No caches yet: diffusion-pipe writes <directory>/cache/<model>/ on its first run.",
        ));
    }
    let now = s.now();
    let path_w = (area.width as usize / 4).clamp(10, 50);
    for (i, (dir, c)) in rows.iter().enumerate() {
        let age = c
            .newest
            .and_then(|t| now.duration_since(t).ok())
            .map_or("?".into(), crate::system::procs::format_age);
        let mut l = Line::from(vec![
            Span::raw(format!(
                "{:<path_w$} {:<12} {:>9} {:>8} ago  ",
                ellipsize(&esc(&dir.display().to_string()), path_w),
                ellipsize(&esc(&c.name), 12),
                format_bytes(c.bytes),
                age
            )),
            if c.stale {
                Span::styled(
                    format!(
                        "stale: run with --regenerate_cache ({} inputs newer)",
                        c.newer_count
                    ),
                    theme.warn(),
                )
            } else {
                Span::styled("up to date", theme.ok())
            },
        ]);
        if i == row {
            l = l.style(theme.selected());
        }
        lines.push(l);
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(theme, "Caches (D delete · Esc back)".into(), true))
            .style(theme.base()),
        area,
    );
}
