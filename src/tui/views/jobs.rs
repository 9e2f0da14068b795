//! The Jobs tab: the job list, the launch dialog, and the job view (header, progress, loss
//! chart, failures, and one log pane per rank plus the launcher's).
//!
//! Log panes are drawn straight into the frame buffer, one visible line at a time: a pane holds
//! thousands of lines and nine panes redraw every frame, so nothing here walks a whole buffer.
//! Log text is untrusted: control characters are shown as `\xNN` (tabs expanded), never sent
//! to the terminal.

use super::centered;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};

use super::environment::bar;
use crate::jobs::journal::JobState;
use crate::jobs::launch::Severity;
use crate::jobs::store::JobView;
use crate::system::gpu::GpuSnapshot;
use crate::system::procs::format_age;
use crate::trainer::progress::{FailureKind, Progress};
use crate::tui::app::State;
use crate::tui::jobs::{JobLogs, LaunchDialog, LaunchStep, OPTION_LABELS, Pane, option_value};
use crate::tui::theme::Theme;
use crate::units::{ellipsize, format_bytes};

/// Weight of each new point in the smoothed loss line.
pub const SMOOTHING: f64 = 0.1;
/// Panes are laid out to be at least this wide and tall when the area allows.
const PANE_MIN_W: u16 = 40;
const PANE_MIN_H: u16 = 5;

pub fn draw(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    match &s.jobs.logs {
        Some(logs) => draw_view(f, s, &logs.lock(), theme, area),
        None => draw_list(f, s, theme, area),
    }
    if let Some(d) = &s.jobs.launch {
        draw_launch(f, s, d, theme, area);
    }
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/// `s` with control characters (but tabs) shown as `\xNN`; borrowed when there are none.
pub fn esc(s: &str) -> Cow<'_, str> {
    crate::units::escape_controls(s, true)
}

/// The first `max_cols` columns of a log line into `out`: tabs expanded to 8-column stops,
/// other control characters as `\xNN`. Only the shown prefix is looked at.
pub fn clip_line(out: &mut String, line: &str, max_cols: usize) {
    out.clear();
    let mut col = 0;
    for c in line.chars() {
        if col >= max_cols {
            break;
        }
        if c == '\t' {
            let n = 8 - col % 8;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else if c.is_control() {
            let _ = write!(out, "\\x{:02x}", c as u32);
            col += 4;
        } else {
            out.push(c);
            col += 1;
        }
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn gpus_text(j: &JobView) -> String {
    if j.journal.cpu_ranks {
        return format!("CPU×{}", j.journal.gpus.len().max(1));
    }
    j.journal
        .gpus
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn state_style(theme: &Theme, st: JobState) -> Style {
    match st {
        JobState::Running => theme.accent().add_modifier(Modifier::BOLD),
        JobState::Starting => theme.accent(),
        JobState::Stopping | JobState::Stopped => theme.warn(),
        JobState::Succeeded => theme.ok(),
        JobState::Failed | JobState::Lost => theme.error(),
    }
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Started → ended (or now).
fn elapsed(s: &State, j: &JobView) -> Option<Duration> {
    let start = j.journal.started?;
    let end = j.journal.ended_at.unwrap_or_else(|| unix(s.now()));
    Some(Duration::from_secs(end.saturating_sub(start)))
}

fn loss_text(l: f64) -> String {
    if l.is_finite() {
        format!("{l:.4}")
    } else {
        l.to_string()
    }
}

/// Rows `lines` take when wrapped at `width` columns.
fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

fn empty_paragraph(f: &mut Frame, area: Rect, lines: Vec<Line<'_>>) {
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

// ---------------------------------------------------------------------------------------------
// Job list

struct Col {
    title: &'static str,
    width: u16,
    /// Columns with a lower priority are dropped first when the width runs out.
    priority: u8,
}

const COLS: &[Col] = &[
    Col {
        title: "ID",
        width: 19,
        priority: 10,
    },
    Col {
        title: "CONFIG",
        width: 10,
        priority: 9,
    },
    Col {
        title: "MODEL",
        width: 10,
        priority: 2,
    },
    Col {
        title: "GPUS",
        width: 7,
        priority: 5,
    },
    Col {
        title: "PORT",
        width: 5,
        priority: 3,
    },
    Col {
        title: "STATE",
        width: 9,
        priority: 10,
    },
    Col {
        title: "EPOCH",
        width: 5,
        priority: 6,
    },
    Col {
        title: "STEP",
        width: 11,
        priority: 8,
    },
    Col {
        title: "LOSS",
        width: 7,
        priority: 7,
    },
    Col {
        title: "ELAPSED",
        width: 7,
        priority: 6,
    },
    Col {
        title: "ETA",
        width: 7,
        priority: 4,
    },
];
const CONFIG_COL: usize = 1;

/// Which columns fit in `width`, and their widths (the config column takes what is left, up
/// to 32).
fn list_columns(width: u16) -> Vec<(usize, u16)> {
    let mut keep: Vec<usize> = (0..COLS.len()).collect();
    let need = |k: &[usize]| -> u16 {
        k.iter()
            .map(|&i| COLS[i].width + 1)
            .sum::<u16>()
            .saturating_sub(1)
    };
    while need(&keep) > width && keep.len() > 1 {
        let (pos, _) = keep
            .iter()
            .enumerate()
            .min_by_key(|(p, i)| (COLS[**i].priority, std::cmp::Reverse(*p)))
            .unwrap_or((0, &0));
        keep.remove(pos);
    }
    let spare = width.saturating_sub(need(&keep));
    keep.iter()
        .map(|&i| {
            let w = if i == CONFIG_COL {
                COLS[i].width + spare.min(22)
            } else {
                COLS[i].width
            };
            (i, w)
        })
        .collect()
}

fn list_cell<'a>(s: &State, theme: &Theme, j: &JobView, col: usize, w: u16) -> Span<'a> {
    let p = &j.journal.progress;
    let text = match col {
        0 => j.id().to_string(),
        1 => esc(&j.config_name()).into_owned(),
        2 => esc(j.journal.model_type.as_deref().unwrap_or("-")).into_owned(),
        3 => gpus_text(j),
        4 => j.journal.port.to_string(),
        5 => return Span::styled(j.state.label(), state_style(theme, j.state)),
        6 => match (p.epoch, j.journal.epochs) {
            (Some(e), Some(t)) => format!("{e}/{t}"),
            (e, _) => dash(e),
        },
        7 => match (p.step, p.total_steps) {
            (Some(st), Some(t)) => format!("{st}/{t}"),
            (st, _) => dash(st),
        },
        8 => p.loss.map(loss_text).unwrap_or_else(|| "-".into()),
        9 => elapsed(s, j).map(format_age).unwrap_or_else(|| "-".into()),
        10 => p
            .eta_secs
            .filter(|_| j.state == JobState::Running)
            .map(|e| format_age(Duration::from_secs(e)))
            .unwrap_or_else(|| "-".into()),
        _ => String::new(),
    };
    Span::raw(ellipsize(&text, w as usize))
}

fn draw_list(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let list = &s.jobs.list;
    let running = list
        .iter()
        .filter(|j| matches!(j.state, JobState::Running | JobState::Starting))
        .count();
    let mut title = vec![Span::styled(" Jobs ", theme.title())];
    if s.jobs.loaded {
        let mut t = format!(
            "{} job{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        if running > 0 {
            let _ = write!(t, " · {running} running");
        }
        title.push(Span::styled(format!("{t} "), theme.muted()));
    }
    // The table as tall as its rows (or what is left), the selected job's details below it.
    let sel = s.jobs.selected.min(list.len().saturating_sub(1));
    let detail = list
        .get(sel)
        .filter(|_| s.jobs.loaded && area.height >= 14)
        .map(|j| detail_lines(theme, j));
    let detail_h = detail.as_ref().map_or(0, |l| {
        (wrapped_rows(l, area.width.saturating_sub(2)) + 2).min(area.height / 2)
    });
    let table_h = match detail {
        Some(_) => u16::try_from(list.len())
            .unwrap_or(u16::MAX)
            .saturating_add(3)
            .min(area.height - detail_h),
        None => area.height,
    };
    let table_area = Rect::new(area.x, area.y, area.width, table_h);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Line::from(title));
    let inner = block.inner(table_area);
    f.render_widget(block, table_area);
    if !s.jobs.loaded {
        f.render_widget(Paragraph::new("reading jobs…").style(theme.muted()), inner);
        return;
    }
    if list.is_empty() {
        empty_paragraph(
            f,
            inner,
            vec![
                Line::styled("No jobs yet.", theme.title()),
                Line::raw(""),
                Line::from(vec![
                    Span::raw("Press "),
                    Span::styled("n", theme.accent().add_modifier(Modifier::BOLD)),
                    Span::raw(
                        " to launch one (pick a config, GPUs and options; a pre-flight checks them first),",
                    ),
                ]),
                Line::from(vec![
                    Span::raw("or run "),
                    Span::styled("dpgui launch --config FILE --gpus 0", theme.accent()),
                    Span::raw(" from a shell."),
                ]),
                Line::raw(""),
                Line::styled(
                    "Jobs run detached from this dashboard: quitting it or losing SSH leaves them running.",
                    theme.muted(),
                ),
            ],
        );
        return;
    }
    let cols = list_columns(inner.width);
    let header =
        Row::new(cols.iter().map(|(i, _)| {
            Span::styled(COLS[*i].title, theme.muted().add_modifier(Modifier::BOLD))
        }));
    let rows: Vec<Row> = list
        .iter()
        .map(|j| Row::new(cols.iter().map(|(i, w)| list_cell(s, theme, j, *i, *w))))
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(sel));
    f.render_stateful_widget(table, inner, &mut state);

    if let (Some(lines), Some(j)) = (detail, list.get(sel)) {
        let r = Rect::new(area.x, area.y + table_h, area.width, detail_h);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(false))
            .title(Line::from(vec![
                Span::styled(format!(" {} ", j.id()), theme.title()),
                Span::styled(format!("{} ", j.state.label()), state_style(theme, j.state)),
            ]));
        f.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            r,
        );
    }
}

fn kv<'a>(theme: &Theme, k: &str, v: impl Into<Cow<'a, str>>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<10}"), theme.muted()),
        Span::raw(v.into()),
    ])
}

/// The selected job in words: why it ended, where it writes, the command, its processes.
fn detail_lines<'a>(theme: &Theme, j: &JobView) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let why = j.lost.as_deref().or(j.journal.reason.as_deref());
    match why {
        Some(w) if j.state != JobState::Succeeded => {
            let style = match j.state {
                JobState::Failed | JobState::Lost => theme.error(),
                _ => theme.warn(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<10}", "why"), theme.muted()),
                Span::styled(esc(w).into_owned(), style),
            ]));
        }
        _ => lines.push(kv(
            theme,
            "config",
            esc(&j.journal.config.display().to_string()).into_owned(),
        )),
    }
    let run = match (&j.journal.run_dir, &j.journal.output_dir) {
        (Some(r), _) => r.display().to_string(),
        (None, Some(o)) => format!("(not created yet, under {})", o.display()),
        (None, None) => "(not known yet)".into(),
    };
    lines.push(kv(theme, "run dir", esc(&run).into_owned()));
    lines.push(kv(
        theme,
        "command",
        esc(&j.journal.plan.display()).into_owned(),
    ));
    let procs = match j.processes.len() {
        0 => "none running".to_string(),
        1 => "1 running".to_string(),
        n => format!("{n} running"),
    };
    let mut p = procs;
    if let Some(pg) = j.journal.pgid {
        let _ = write!(p, " · process group {pg}");
    }
    if let Some(c) = j.journal.exit_code {
        let _ = write!(p, " · exit code {c}");
    }
    if let Some(sig) = j.journal.exit_signal {
        let _ = write!(p, " · signal {sig}");
    }
    lines.push(kv(theme, "processes", p));
    lines.push(kv(
        theme,
        "job dir",
        esc(&j.dir.display().to_string()).into_owned(),
    ));
    lines
}

// ---------------------------------------------------------------------------------------------
// Launch dialog

const STEPS: [(LaunchStep, &str); 4] = [
    (LaunchStep::Config, "Config"),
    (LaunchStep::Gpus, "GPUs"),
    (LaunchStep::Options, "Options"),
    (LaunchStep::Review, "Review"),
];

fn step_index(st: LaunchStep) -> usize {
    STEPS.iter().position(|(s, _)| *s == st).unwrap_or(0)
}

/// First row shown so that `sel` is visible in `rows` rows.
fn scroll_to(sel: usize, rows: usize) -> usize {
    if rows == 0 {
        0
    } else {
        (sel + 1).saturating_sub(rows)
    }
}

fn cursor(theme: &Theme) -> Span<'static> {
    Span::styled(" ", theme.base().add_modifier(Modifier::REVERSED))
}

fn draw_launch(f: &mut Frame, s: &State, d: &LaunchDialog, theme: &Theme, area: Rect) {
    let r = centered(area, 104, 40);
    f.render_widget(Clear, r);
    let cur = step_index(d.step);
    let (footer, footer_style): (&str, Style) = match d.step {
        LaunchStep::Options if d.typing.is_some() => (
            "KEY=VALUE pairs separated by spaces · Enter set · Esc cancel",
            theme.muted(),
        ),
        _ if d.typing.is_some() => ("Enter use this path · Esc stop typing", theme.muted()),
        LaunchStep::Config => (
            "↑↓ select · Enter next · / type a path · Esc close",
            theme.muted(),
        ),
        LaunchStep::Gpus => (
            "↑↓ move · space tick · a all · Enter next · Shift-Tab back · Esc close",
            theme.muted(),
        ),
        LaunchStep::Options => (
            "↑↓ move · space toggle · v extra env · Enter check · Shift-Tab back · Esc close",
            theme.muted(),
        ),
        LaunchStep::Review => match &d.review {
            _ if d.starting => ("starting…", theme.accent()),
            None => ("checking… · Esc back", theme.muted()),
            Some(rv) if rv.failed => ("fix the ✗ items · r re-check · Esc back", theme.error()),
            Some(_) => ("Enter launch · r re-check · Esc back", theme.title()),
        },
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Line::styled(" Launch a job ", theme.title()))
        .title_bottom(Line::styled(format!(" {footer} "), footer_style));
    let inner = block.inner(r);
    f.render_widget(Paragraph::new("").style(theme.base()).block(block), r);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    // Step header.
    let mut spans = vec![Span::raw(" ")];
    for (i, (_, name)) in STEPS.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" › ", theme.muted()));
        }
        let label = format!(" {} {name} ", i + 1);
        let style = match i.cmp(&cur) {
            std::cmp::Ordering::Equal => theme.tab_active(),
            std::cmp::Ordering::Less => theme.ok(),
            std::cmp::Ordering::Greater => theme.muted(),
        };
        spans.push(Span::styled(label, style));
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    let body = Rect::new(
        inner.x + 1.min(inner.width),
        inner.y + 2.min(inner.height),
        inner.width.saturating_sub(2),
        inner.height.saturating_sub(2),
    );
    if body.height == 0 || body.width == 0 {
        return;
    }
    match d.step {
        LaunchStep::Config => launch_config(f, d, theme, body),
        LaunchStep::Gpus => launch_gpus(f, s, d, theme, body),
        LaunchStep::Options => launch_options(f, d, theme, body),
        LaunchStep::Review => launch_review(f, d, theme, body),
    }
}

fn summary_line<'a>(d: &LaunchDialog, theme: &Theme) -> Line<'a> {
    let cfg = d
        .config
        .as_ref()
        .map(|c| esc(&c.display().to_string()).into_owned())
        .unwrap_or_else(|| "-".into());
    let gpus = d
        .ticked()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Line::from(vec![
        Span::styled("config ", theme.muted()),
        Span::raw(cfg),
        Span::styled("   GPUs ", theme.muted()),
        Span::raw(if gpus.is_empty() { "-".into() } else { gpus }),
    ])
}

fn launch_config(f: &mut Frame, d: &LaunchDialog, theme: &Theme, area: Rect) {
    let w = area.width as usize;
    let mut lines = vec![Line::styled(
        "Training config (the main TOML passed to train.py --config):",
        theme.title(),
    )];
    if let Some(t) = &d.typing {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("path: ", theme.muted()),
            Span::raw(esc(t).into_owned()),
            cursor(theme),
        ]));
        lines.push(Line::styled(
            "relative paths are taken from the directory dpgui was started in",
            theme.muted(),
        ));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    }
    if d.configs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "no configs found in the current dir or ~/.config/dpgui; press / to type a path",
            theme.warn(),
        ));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    }
    let rows = (area.height as usize).saturating_sub(1);
    let sel = d.config_sel.min(d.configs.len() - 1);
    let first = scroll_to(sel, rows);
    for (i, c) in d.configs.iter().enumerate().skip(first).take(rows) {
        let text = format!(
            "{} {}",
            if i == sel { "›" } else { " " },
            esc(&c.display().to_string())
        );
        let style = if i == sel {
            theme.selected()
        } else {
            Style::default()
        };
        lines.push(Line::styled(ellipsize(&text, w), style));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn launch_gpus(f: &mut Frame, s: &State, d: &LaunchDialog, theme: &Theme, area: Rect) {
    let w = area.width as usize;
    let snap = s.env.gpu.as_ref().and_then(|g| g.snapshot.as_ref());
    let cpu = snap.is_none_or(|sn| sn.gpus.is_empty());
    let mut lines = vec![
        summary_line(d, theme),
        Line::raw(""),
        Line::styled(
            if cpu {
                "Ranks to start (no NVIDIA GPU: CPU ranks):"
            } else {
                "GPUs to train on (one rank per GPU):"
            },
            theme.title(),
        ),
    ];
    let rows = (area.height as usize).saturating_sub(lines.len());
    let sel = d.gpu_sel.min(d.gpus.len().saturating_sub(1));
    let first = scroll_to(sel, rows);
    for (i, (id, ticked)) in d.gpus.iter().enumerate().skip(first).take(rows) {
        let tick = if *ticked { "[x]" } else { "[ ]" };
        let mut spans = vec![Span::raw(format!("{tick} "))];
        match snap.and_then(|sn| sn.gpus.iter().find(|g| g.index == *id)) {
            _ if cpu => spans.push(Span::raw(format!("rank {i} (CPU: no NVIDIA GPU)"))),
            Some(g) => {
                spans.push(Span::raw(format!(
                    "GPU {id}  {:<22} ",
                    ellipsize(&esc(&g.name.replace("NVIDIA ", "")), 22)
                )));
                let mem = match (g.memory_used_bytes, g.memory_total_bytes) {
                    (Some(u), Some(t)) => format!(
                        "{}/{}",
                        format_bytes(u).replace(" GiB", ""),
                        format_bytes(t)
                    ),
                    _ => "n/a".into(),
                };
                spans.push(Span::raw(format!("{mem:>16}  ")));
                spans.push(Span::raw(match g.utilization_pct {
                    Some(u) => format!("{u:>3}%"),
                    None => " n/a".into(),
                }));
                let n = g.processes.len();
                if n > 0 {
                    spans.push(Span::styled(
                        format!("  in use: {n} process{}", if n == 1 { "" } else { "es" }),
                        theme.warn(),
                    ));
                }
            }
            None => spans.push(Span::styled(
                format!("GPU {id}  (not in NVML's list)"),
                theme.warn(),
            )),
        }
        let line = Line::from(spans);
        lines.push(if i == sel {
            line.style(theme.selected())
        } else {
            line
        });
    }
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| {
            if l.width() > w {
                let t: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                Line::styled(ellipsize(&t, w), l.style)
            } else {
                l
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

fn launch_options(f: &mut Frame, d: &LaunchDialog, theme: &Theme, area: Rect) {
    let w = area.width as usize;
    let mut lines = vec![
        summary_line(d, theme),
        Line::raw(""),
        Line::styled("Options:", theme.title()),
    ];
    let rows = (area.height as usize).saturating_sub(lines.len());
    let sel = d.option_sel.min(OPTION_LABELS.len() - 1);
    let first = scroll_to(sel, rows);
    for (i, label) in OPTION_LABELS.iter().enumerate().skip(first).take(rows) {
        let tick = if option_value(&d.options, i) {
            "[x]"
        } else {
            "[ ]"
        };
        let text = ellipsize(&format!("{tick} {label}"), w);
        lines.push(if i == sel {
            Line::styled(text, theme.selected())
        } else {
            Line::raw(text)
        });
    }
    lines.push(Line::raw(""));
    match &d.typing {
        Some(t) => lines.push(Line::from(vec![
            Span::styled("extra env: ", theme.title()),
            Span::raw(esc(t).into_owned()),
            cursor(theme),
        ])),
        None => {
            let env: Vec<String> = d
                .options
                .extra_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            lines.push(Line::from(vec![
                Span::styled("extra env (v to edit): ", theme.muted()),
                Span::raw(ellipsize(&esc(&env.join(" ")), w.saturating_sub(24))),
            ]));
        }
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn launch_review(f: &mut Frame, d: &LaunchDialog, theme: &Theme, area: Rect) {
    let mut lines = vec![summary_line(d, theme), Line::raw("")];
    let Some(rv) = &d.review else {
        lines.push(Line::styled(
            "checking… (config, checkout, Python environment, GPUs, port)",
            theme.muted(),
        ));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    };
    lines.push(Line::styled("Pre-flight", theme.title()));
    for fi in &rv.findings {
        let (icon, style) = match fi.severity {
            Severity::Ok => ("✓", theme.ok()),
            Severity::Warn => ("!", theme.warn()),
            Severity::Fail => ("✗", theme.error()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {icon} "), style),
            Span::raw(esc(&fi.message).into_owned()),
        ]));
        if let Some(fix) = &fi.fix {
            lines.push(Line::styled(format!("     → {}", esc(fix)), theme.muted()));
        }
    }
    lines.push(Line::raw(""));
    if rv.failed {
        lines.push(Line::styled(
            "Fix the ✗ items, then press r to check again (nothing was started).",
            theme.error(),
        ));
        lines.push(Line::raw(""));
    }
    match &rv.command {
        Some(c) => {
            lines.push(Line::styled(
                if rv.failed {
                    "The command would be:"
                } else {
                    "The exact command:"
                },
                theme.title(),
            ));
            lines.push(Line::styled(format!("  {}", esc(c)), theme.accent()));
        }
        None => lines.push(Line::styled(
            "no command: the pre-flight stopped before it could build one",
            theme.muted(),
        )),
    }
    if let Some(cwd) = &rv.cwd {
        lines.push(Line::from(vec![
            Span::styled("  cwd  ", theme.muted()),
            Span::raw(esc(cwd).into_owned()),
        ]));
    }
    for (k, v) in &rv.env {
        lines.push(Line::from(vec![
            Span::styled("  env  ", theme.muted()),
            Span::raw(format!("{}={}", esc(k), esc(v))),
        ]));
    }
    if let Some(p) = rv.port {
        lines.push(Line::from(vec![
            Span::styled("  port ", theme.muted()),
            Span::raw(format!(
                "{p} (held for this launch until it starts or is cancelled)"
            )),
        ]));
    }
    if d.starting {
        lines.push(Line::raw(""));
        lines.push(Line::styled("starting…", theme.accent()));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

// ---------------------------------------------------------------------------------------------
// Job view

fn draw_view(f: &mut Frame, s: &State, l: &JobLogs, theme: &Theme, area: Rect) {
    let job = s.jobs.list.iter().find(|j| j.journal.id == l.job_id);
    let mut y = area.y;
    let bottom = area.y + area.height;
    let take = |y: &mut u16, h: u16| -> Rect {
        let h = h.min(bottom.saturating_sub(*y));
        let r = Rect::new(area.x, *y, area.width, h);
        *y += h;
        r
    };
    let header = take(&mut y, 1);
    f.render_widget(Paragraph::new(header_line(s, l, job, theme)), header);
    let prog = take(&mut y, 1);
    f.render_widget(
        Paragraph::new(progress_line(l, job, theme, prog.width as usize)),
        prog,
    );
    if !l.failures.is_empty() {
        let lines = failure_lines(s, l, job, theme);
        let want = wrapped_rows(&lines, area.width);
        let h = want.min(area.height / 3).max(1);
        let r = take(&mut y, h);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), r);
    }
    let rest = bottom.saturating_sub(y);
    if area.height >= 20 && l.progress.losses.len() >= 2 {
        let h = (area.height / 4).clamp(6, 14);
        if rest >= h + PANE_MIN_H {
            let r = take(&mut y, h);
            draw_chart(f, &l.progress, theme, r);
        }
    }
    let grid_area = Rect::new(area.x, y, area.width, bottom.saturating_sub(y));
    draw_panes(f, s, l, job, theme, grid_area);
}

fn header_line<'a>(s: &State, l: &JobLogs, job: Option<&JobView>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(format!(" job {} ", l.job_id), theme.title())];
    let Some(j) = job else {
        spans.push(Span::styled("(not in the job list)", theme.muted()));
        return Line::from(spans);
    };
    let sep = || Span::styled(" · ", theme.muted());
    spans.push(Span::styled(j.state.label(), state_style(theme, j.state)));
    spans.push(sep());
    spans.push(Span::raw(esc(&j.config_name()).into_owned()));
    if let Some(m) = &j.journal.model_type {
        spans.push(Span::styled(format!(" ({})", esc(m)), theme.muted()));
    }
    spans.push(sep());
    spans.push(Span::raw(if j.journal.cpu_ranks {
        format!("CPU ranks ×{}", j.journal.gpus.len().max(1))
    } else {
        format!("GPUs {}", gpus_text(j))
    }));
    spans.push(sep());
    spans.push(Span::raw(format!("port {}", j.journal.port)));
    if let Some(e) = elapsed(s, j) {
        spans.push(sep());
        spans.push(Span::raw(format!("{} elapsed", format_age(e))));
    }
    if let Some(why) = j.lost.as_deref().or(j.journal.reason.as_deref())
        && j.state != JobState::Succeeded
    {
        spans.push(sep());
        let st = if matches!(j.state, JobState::Failed | JobState::Lost) {
            theme.error()
        } else {
            theme.warn()
        };
        spans.push(Span::styled(esc(why).into_owned(), st));
    }
    Line::from(spans)
}

fn progress_line<'a>(l: &JobLogs, job: Option<&JobView>, theme: &Theme, width: usize) -> Line<'a> {
    let p = &l.progress;
    let sep = || Span::styled(" · ", theme.muted());
    let mut spans = vec![Span::raw(" ")];
    let ended = job.is_some_and(|j| j.state.ended() || j.state == JobState::Lost);
    if p.complete {
        spans.push(Span::styled(
            "TRAINING COMPLETE",
            theme.ok().add_modifier(Modifier::BOLD),
        ));
        spans.push(sep());
    } else if p.manual_quit {
        spans.push(Span::styled("saved & stopped", theme.warn()));
        spans.push(sep());
    }
    let total = p
        .total_steps(
            job.and_then(|j| j.journal.epochs),
            job.and_then(|j| j.journal.max_steps),
        )
        .or_else(|| job.and_then(|j| j.journal.progress.total_steps));
    match p.step {
        None => {
            if let Some(c) = &p.caching {
                spans.push(Span::styled("caching ", theme.accent()));
                spans.push(Span::raw(esc(c).into_owned()));
            } else if !l.history_loaded {
                spans.push(Span::styled("reading the log history…", theme.muted()));
            } else if ended {
                spans.push(Span::styled("no training step was logged", theme.muted()));
            } else {
                spans.push(Span::styled("waiting for the first step…", theme.muted()));
            }
        }
        Some(step) => {
            let epochs = job.and_then(|j| j.journal.epochs);
            spans.push(Span::raw(match (p.epoch, epochs) {
                (Some(e), Some(t)) => format!("epoch {e}/{t}"),
                (Some(e), None) => format!("epoch {e}"),
                (None, _) => "epoch -".into(),
            }));
            spans.push(sep());
            match total.filter(|t| *t > 0) {
                Some(t) => {
                    let pct = (step as f64 / t as f64 * 100.0).clamp(0.0, 100.0);
                    spans.push(Span::raw(format!("step {step}/{t} ")));
                    let bw = if width >= 140 {
                        20
                    } else if width >= 100 {
                        12
                    } else {
                        6
                    };
                    spans.push(Span::styled(bar(pct, bw), theme.accent()));
                    spans.push(Span::raw(format!(" {pct:.0}%")));
                }
                None => spans.push(Span::raw(format!("step {step}"))),
            }
            if let Some(loss) = p.loss {
                spans.push(sep());
                spans.push(Span::raw(format!("loss {}", loss_text(loss))));
            }
            if let Some(it) = p.iter_time {
                spans.push(sep());
                spans.push(Span::raw(format!("{it:.2} s/it")));
            }
            if let Some(sps) = p.samples_per_sec {
                spans.push(sep());
                spans.push(Span::raw(format!("{sps:.1} samples/s")));
            }
            if !ended
                && !p.complete
                && let Some(eta) = p.eta(total)
            {
                spans.push(sep());
                spans.push(Span::styled(
                    format!("ETA {}", format_age(eta)),
                    theme.title(),
                ));
            }
            if let Some(c) = &p.caching {
                spans.push(sep());
                spans.push(Span::styled(format!("caching {}", esc(c)), theme.accent()));
            }
        }
    }
    if let Some(last) = p.saved.last() {
        spans.push(sep());
        spans.push(Span::styled(format!("saved {}", esc(last)), theme.muted()));
    }
    if p.evals > 0 {
        spans.push(sep());
        spans.push(Span::styled(format!("{} evals", p.evals), theme.muted()));
    }
    Line::from(spans)
}

fn failure_lines<'a>(
    s: &State,
    l: &JobLogs,
    job: Option<&JobView>,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    for (rank, fl) in l.failures.iter().take(3) {
        let who = match rank {
            Some(r) => format!("rank {r}"),
            None => "launcher".into(),
        };
        lines.push(Line::from(vec![
            Span::styled(" ✗ ", theme.error()),
            Span::styled(format!("{who}: {}", fl.kind.title()), theme.error()),
        ]));
        lines.push(Line::styled(
            format!("   fix: {}", fl.kind.fix()),
            theme.warn().remove_modifier(Modifier::BOLD),
        ));
        if let FailureKind::PortInUse { port } = &fl.kind
            && let Some(p) = port.or_else(|| job.map(|j| j.journal.port))
        {
            let now = match s.env.inventory.as_ref().and_then(|inv| inv.port(p)) {
                Some(ps) => ps.summary(),
                None => "not watched (add it to the watched ports to see its holder)".into(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("   port {p} now: "), theme.muted()),
                Span::raw(esc(&now).into_owned()),
            ]));
        }
    }
    if l.failures.len() > 3 {
        lines.push(Line::styled(
            format!("   … and {} more", l.failures.len() - 3),
            theme.muted(),
        ));
    }
    lines
}

/// Min and max of each x bucket (points in step order within a bucket), so a long run's
/// 100,000 points cost what the chart's width costs.
fn decimate(
    points: &[(u64, f32)],
    x0: u64,
    x1: u64,
    buckets: usize,
) -> (Vec<(f64, f64)>, f64, f64) {
    let buckets = buckets.max(1);
    let span = (x1.saturating_sub(x0)).max(1) as f64;
    let mut mm: Vec<Option<(u64, f32, u64, f32)>> = vec![None; buckets];
    for &(x, y) in points {
        if !y.is_finite() {
            continue;
        }
        let b = (((x.saturating_sub(x0)) as f64 / span) * (buckets - 1) as f64) as usize;
        let slot = &mut mm[b.min(buckets - 1)];
        match slot {
            None => *slot = Some((x, y, x, y)),
            Some((xl, lo, xh, hi)) => {
                if y < *lo {
                    (*xl, *lo) = (x, y);
                }
                if y > *hi {
                    (*xh, *hi) = (x, y);
                }
            }
        }
    }
    let (mut ymin, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut out = Vec::with_capacity(buckets * 2);
    for (xl, lo, xh, hi) in mm.into_iter().flatten() {
        ymin = ymin.min(f64::from(lo));
        ymax = ymax.max(f64::from(hi));
        if xl <= xh {
            out.push((xl as f64, f64::from(lo)));
            if xh != xl {
                out.push((xh as f64, f64::from(hi)));
            }
        } else {
            out.push((xh as f64, f64::from(hi)));
            out.push((xl as f64, f64::from(lo)));
        }
    }
    (out, ymin, ymax)
}

/// One point per bucket (the last), for the smoothed line.
fn thin(points: &[(u64, f32)], x0: u64, x1: u64, buckets: usize) -> Vec<(f64, f64)> {
    let buckets = buckets.max(1);
    let span = (x1.saturating_sub(x0)).max(1) as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(buckets + 1);
    let mut last_b = usize::MAX;
    for &(x, y) in points {
        let b = (((x.saturating_sub(x0)) as f64 / span) * (buckets - 1) as f64) as usize;
        let p = (x as f64, f64::from(y));
        if b == last_b {
            if let Some(l) = out.last_mut() {
                *l = p;
            }
        } else {
            out.push(p);
            last_b = b;
        }
    }
    out
}

fn fmt_axis(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn draw_chart(f: &mut Frame, p: &Progress, theme: &Theme, area: Rect) {
    let finite = || p.losses.iter().filter(|(_, l)| l.is_finite());
    let (Some(first), Some(last)) = (finite().map(|x| x.0).min(), finite().map(|x| x.0).max())
    else {
        return;
    };
    if first == last {
        return;
    }
    let buckets = (area.width as usize).saturating_sub(10) * 2;
    let (raw, ymin, ymax) = decimate(&p.losses, first, last, buckets);
    let smooth = thin(&p.smoothed_losses(SMOOTHING), first, last, buckets);
    if raw.len() < 2 || !ymin.is_finite() || !ymax.is_finite() {
        return;
    }
    let pad = ((ymax - ymin) * 0.05).max(ymax.abs() * 1e-3).max(1e-6);
    let (lo, hi) = (ymin - pad, ymax + pad);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(false))
        .title(Line::from(vec![
            Span::styled(" loss ", theme.title()),
            Span::styled("raw ", theme.muted()),
            Span::styled(format!("smoothed (EMA {SMOOTHING}) "), theme.accent()),
        ]));
    let mid = first + (last - first) / 2;
    let chart = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Scatter)
            .style(theme.muted())
            .data(&raw),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.accent())
            .data(&smooth),
    ])
    .block(block)
    .x_axis(
        Axis::default()
            .bounds([first as f64, last as f64])
            .style(theme.muted())
            .labels([first.to_string(), mid.to_string(), last.to_string()]),
    )
    .y_axis(
        Axis::default()
            .bounds([lo, hi])
            .style(theme.muted())
            .labels([fmt_axis(lo), fmt_axis(hi)]),
    );
    f.render_widget(chart, area);
}

/// Columns for `n` panes in `area`, and whether the panes are usable at all (at least 20
/// columns and one line of text each): as many columns as keep panes at least
/// [`PANE_MIN_W`]×[`PANE_MIN_H`] while giving each the most useful room.
fn grid_cols(area: Rect, n: usize) -> (usize, bool) {
    let (w, h) = (area.width as usize, area.height as usize);
    let mut best = (0u8, 0usize, 1usize);
    for cols in 1..=n.max(1) {
        let rows = n.max(1).div_ceil(cols);
        let (pw, ph) = (w / cols, h / rows);
        let tier = if pw >= PANE_MIN_W as usize && ph >= PANE_MIN_H as usize {
            2
        } else if pw >= 20 && ph >= 3 {
            1
        } else {
            0
        };
        // Text room: columns past 100 and rows past 12 add little to a log pane, whose newest
        // lines matter most.
        let score = pw.saturating_sub(2).min(100) * ph.saturating_sub(2).min(12);
        if (tier, score) > (best.0, best.1) {
            best = (tier, score, cols);
        }
    }
    (best.2, best.0 > 0)
}

/// Rectangles for `n` panes in `area` (see [`grid_cols`]); the panes of an incomplete last
/// row share its whole width.
pub fn grid(area: Rect, n: usize) -> Vec<Rect> {
    if n == 0 {
        return vec![];
    }
    let (w, h) = (area.width as usize, area.height as usize);
    let (cols, _) = grid_cols(area, n);
    let rows = n.div_ceil(cols);
    let mut out = Vec::with_capacity(n);
    let mut y = area.y;
    for r in 0..rows {
        let rh = (h / rows + usize::from(r < h % rows)) as u16;
        let in_row = if r + 1 == rows {
            n - cols * (rows - 1)
        } else {
            cols
        };
        let mut x = area.x;
        for c in 0..in_row {
            let cw = (w / in_row + usize::from(c < w % in_row)) as u16;
            out.push(Rect::new(x, y, cw, rh));
            x += cw;
        }
        y += rh;
    }
    out
}

/// Rank `rank`'s figures from the GPU snapshot: (GPU id, memory of its process, utilisation).
fn rank_gpu(
    snap: Option<&GpuSnapshot>,
    job: &JobView,
    rank: u32,
) -> (Option<u32>, Option<u64>, Option<u32>) {
    let id = job.journal.gpus.get(rank as usize).copied();
    let pid = job
        .journal
        .ranks
        .iter()
        .find(|r| r.local_rank == Some(rank))
        .map(|r| r.pid);
    let Some(snap) = snap else {
        return (id, None, None);
    };
    // The GPU that holds the rank's process, else the one it was given.
    let held = pid.and_then(|pid| {
        snap.gpus.iter().find_map(|g| {
            g.processes
                .iter()
                .find(|p| p.pid == pid)
                .map(|p| (g, p.used_memory_bytes))
        })
    });
    match held {
        Some((g, mem)) => (Some(g.index), mem, g.utilization_pct),
        None => {
            let util = id
                .and_then(|id| snap.gpus.iter().find(|g| g.index == id))
                .and_then(|g| g.utilization_pct);
            (id, None, util)
        }
    }
}

/// How long a rank may print nothing before it is flagged: 10 steps, at least a minute.
pub fn silence_limit(iter_time: Option<f64>) -> u64 {
    let ten = iter_time
        .filter(|t| t.is_finite() && *t > 0.0)
        .map_or(0.0, |t| t * 10.0);
    (ten.ceil() as u64).max(60)
}

fn pane_title<'a>(
    s: &State,
    pane: &Pane,
    job: Option<&JobView>,
    l: &JobLogs,
    now: Option<Instant>,
    theme: &Theme,
    focused: bool,
) -> Line<'a> {
    let name_style = if focused {
        theme.title()
    } else {
        theme.base().add_modifier(Modifier::BOLD)
    };
    let sep = || Span::styled(" · ", theme.muted());
    let mut spans = vec![Span::raw(" "), Span::styled(pane.title(), name_style)];
    if let (Some(rank), Some(j)) = (pane.rank, job) {
        if j.journal.cpu_ranks {
            spans.push(sep());
            spans.push(Span::raw("CPU"));
        } else {
            let snap = s.env.gpu.as_ref().and_then(|g| g.snapshot.as_ref());
            let (gpu, mem, util) = rank_gpu(snap, j, rank);
            if let Some(g) = gpu {
                spans.push(sep());
                spans.push(Span::raw(format!("GPU {g}")));
            }
            let figures: Vec<String> = mem
                .map(format_bytes)
                .into_iter()
                .chain(util.map(|u| format!("{u}%")))
                .collect();
            if !figures.is_empty() {
                spans.push(sep());
                spans.push(Span::raw(figures.join(" ")));
            }
        }
        if let (Some(now), Some(t)) = (now, pane.tailer.last_growth())
            && j.supervised()
        {
            let secs = now.saturating_duration_since(t).as_secs();
            let limit = silence_limit(l.progress.iter_time);
            // Only rank 0 prints per step; the others are quiet while all is well. A quiet
            // rank is flagged when rank 0 is silent too: the job as a whole has stalled.
            let rank0_silent = rank == 0 || l.silence(0, now).is_none_or(|s0| s0 >= limit);
            spans.push(sep());
            if secs >= limit && rank0_silent {
                spans.push(Span::styled(
                    format!("SILENT {}", format_age(Duration::from_secs(secs))),
                    theme.error(),
                ));
            } else {
                spans.push(Span::styled(
                    format_age(Duration::from_secs(secs)),
                    theme.muted(),
                ));
            }
        }
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

fn draw_panes(
    f: &mut Frame,
    s: &State,
    l: &JobLogs,
    job: Option<&JobView>,
    theme: &Theme,
    area: Rect,
) {
    if area.width == 0 || area.height == 0 || l.panes.is_empty() {
        return;
    }
    let focus = s.jobs.focus.min(l.panes.len() - 1);
    // The clock for "seconds since the last line" is the real one: frozen-clock renders
    // (tests) leave it out.
    let now = s.clock.is_none().then(Instant::now);
    // Too small for every pane: the focused one alone, as when zoomed.
    let alone = s.jobs.zoom || !grid_cols(area, l.panes.len()).1;
    let placed: Vec<(usize, Rect)> = if alone {
        vec![(focus, area)]
    } else {
        grid(area, l.panes.len()).into_iter().enumerate().collect()
    };
    let mut scratch = String::new();
    for (i, r) in placed {
        let pane = &l.panes[i];
        let focused = i == focus;
        let mut block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(pane_title(s, pane, job, l, now, theme, focused));
        if focused && let Some(q) = &s.jobs.search {
            block = block.title_bottom(Line::from(vec![
                Span::styled(" /", theme.accent().add_modifier(Modifier::BOLD)),
                Span::raw(esc(q).into_owned()),
                cursor(theme),
                Span::styled(" Enter find · Esc cancel ", theme.muted()),
            ]));
        } else if pane.scroll > 0 || !pane.follow {
            block = block.title_bottom(Line::styled(
                format!(" ↑ {} lines up · G follow ", pane.scroll),
                theme.warn(),
            ));
        } else if l.panes.len() > 1 && s.jobs.zoom {
            block = block.title_bottom(Line::styled(" zoomed · z all panes ", theme.muted()));
        } else if alone {
            block = block.title_bottom(Line::styled(
                format!(" {}/{} · Tab next ", i + 1, l.panes.len()),
                theme.muted(),
            ));
        }
        let inner = block.inner(r);
        f.render_widget(block, r);
        draw_pane_lines(f.buffer_mut(), pane, theme, inner, &mut scratch);
    }
}

/// The visible lines of one pane, written straight into the buffer.
fn draw_pane_lines(buf: &mut Buffer, pane: &Pane, theme: &Theme, area: Rect, scratch: &mut String) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let width = area.width as usize;
    let mut y = area.y;
    let bottom = area.y + area.height;
    if let Some(e) = &pane.error {
        clip_line(scratch, e, width);
        buf.set_stringn(area.x, y, scratch.as_str(), width, theme.error());
        y += 1;
    }
    let b = pane.tailer.buffer();
    let partial = b.partial().filter(|_| pane.follow && pane.scroll == 0);
    if b.is_empty() && partial.is_none() {
        if y < bottom {
            let msg = if pane.tailer.exists() {
                "(empty so far)"
            } else {
                "waiting for the log…"
            };
            buf.set_stringn(area.x, y, msg, width, theme.muted());
        }
        return;
    }
    let rows = bottom.saturating_sub(y) as usize;
    let line_rows = rows.saturating_sub(usize::from(partial.is_some()));
    let end = b.len().saturating_sub(pane.scroll);
    let start = end.saturating_sub(line_rows);
    let hit_style = theme.selected();
    for i in start..end {
        let Some(line) = b.line(i) else { break };
        clip_line(scratch, line, width);
        if pane.hit == Some(i) {
            buf.set_style(Rect::new(area.x, y, area.width, 1), hit_style);
            buf.set_stringn(area.x, y, scratch.as_str(), width, hit_style);
        } else {
            buf.set_stringn(area.x, y, scratch.as_str(), width, Style::default());
        }
        y += 1;
    }
    if let Some(p) = partial
        && y < bottom
    {
        clip_line(scratch, p, width);
        buf.set_stringn(area.x, y, scratch.as_str(), width, theme.muted());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        let mut out = String::new();
        clip_line(&mut out, "a\tb\x07c\x1b[0m", 80);
        assert_eq!(out, "a       b\\x07c\\x1b[0m");
        clip_line(&mut out, "abcdefgh", 3);
        assert_eq!(out, "abc");
        assert_eq!(esc("plain"), Cow::Borrowed("plain"));
        assert_eq!(esc("a\nb\u{9b}"), "a\\x0ab\\x9b");
    }

    #[test]
    fn grids_keep_panes_readable() {
        let cols = |r: &[Rect]| r.iter().filter(|x| x.y == r[0].y).count();
        // 9 panes on a big screen: 3 by 3.
        let g = grid(Rect::new(0, 0, 200, 42), 9);
        assert_eq!(g.len(), 9);
        assert_eq!(cols(&g), 3);
        assert!(g.iter().all(|r| r.width >= 40 && r.height >= 5));
        // 3 panes in 80x14: two columns, the launcher below at full width.
        let g = grid(Rect::new(0, 0, 80, 14), 3);
        assert_eq!(cols(&g), 2);
        assert_eq!(g[2].width, 80);
        // Every cell is covered exactly once, the area is never exceeded.
        for (w, h, n) in [(200, 60, 9), (120, 27, 3), (40, 8, 3), (0, 0, 4), (3, 1, 9)] {
            let a = Rect::new(5, 7, w, h);
            let g = grid(a, n);
            assert_eq!(g.len(), n);
            let area: u32 = g
                .iter()
                .map(|r| u32::from(r.width) * u32::from(r.height))
                .sum();
            assert_eq!(area, u32::from(w) * u32::from(h), "{w}x{h} n={n}");
            assert!(g.iter().all(|r| a.union(*r) == a));
        }
    }

    #[test]
    fn silence_waits_ten_steps_and_at_least_a_minute() {
        assert_eq!(silence_limit(None), 60);
        assert_eq!(silence_limit(Some(1.5)), 60);
        assert_eq!(silence_limit(Some(30.0)), 300);
        assert_eq!(silence_limit(Some(f64::NAN)), 60);
    }

    #[test]
    fn decimation_keeps_extremes() {
        let pts: Vec<(u64, f32)> = (0..10_000u64).map(|i| (i, (i % 100) as f32)).collect();
        let (d, lo, hi) = decimate(&pts, 0, 9_999, 50);
        assert!(d.len() <= 100);
        assert_eq!((lo, hi), (0.0, 99.0));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "x stays in order");
        let t = thin(&pts, 0, 9_999, 50);
        assert!(t.len() <= 50);
    }
}
