//! The Environment tab: GPUs, watched ports, leftover training processes, environment checks.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::system::checks::Status;
use crate::system::gpu::GpuInfo;
use crate::system::inventory::Holder;
use crate::system::procs::format_age;
use crate::tui::app::{Panel, State};
use crate::tui::theme::Theme;
use crate::units::{ellipsize, format_bytes};

#[derive(Debug, Clone, PartialEq)]
pub enum GpuRow {
    Gpu(usize),
    Process {
        gpu: usize,
        proc_idx: usize,
        pid: u32,
    },
}

/// GPUs, each followed by its processes.
pub fn gpu_rows(s: &State) -> Vec<GpuRow> {
    let Some(snap) = s.env.gpu.as_ref().and_then(|g| g.snapshot.as_ref()) else {
        return vec![];
    };
    let mut rows = Vec::new();
    for (i, g) in snap.gpus.iter().enumerate() {
        rows.push(GpuRow::Gpu(i));
        for (j, p) in g.processes.iter().enumerate() {
            rows.push(GpuRow::Process {
                gpu: i,
                proc_idx: j,
                pid: p.pid,
            });
        }
    }
    rows
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortRow {
    pub port: u16,
    /// Nothing listens, but the port cannot be bound (or sockets could not be listed).
    pub blocked: Option<String>,
    /// None for a free port.
    pub holder: Option<Holder>,
    /// First row of its port (the port number is printed only there).
    pub first: bool,
}

pub fn port_rows(s: &State) -> Vec<PortRow> {
    let Some(inv) = s.env.inventory.as_ref() else {
        return vec![];
    };
    let mut rows = Vec::new();
    for p in &inv.ports {
        let blocked = (!p.listening && p.busy()).then(|| match &p.error {
            Some(e) => format!("busy: cannot be bound ({e})"),
            None => "busy: cannot be bound, yet nothing listens (a connection uses it?)".into(),
        });
        if p.holders.is_empty() {
            rows.push(PortRow {
                port: p.port,
                blocked,
                holder: None,
                first: true,
            });
            continue;
        }
        for (i, h) in p.holders.iter().enumerate() {
            rows.push(PortRow {
                port: p.port,
                blocked: None,
                holder: Some(h.clone()),
                first: i == 0,
            });
        }
    }
    rows
}

pub struct EnvLayout {
    pub gpus: Rect,
    pub ports: Rect,
    pub leftovers: Rect,
    pub checks: Rect,
}

impl EnvLayout {
    pub fn rect(&self, p: Panel) -> Rect {
        match p {
            Panel::Gpus => self.gpus,
            Panel::Ports => self.ports,
            Panel::Leftovers => self.leftovers,
            Panel::Checks => self.checks,
        }
    }
}

/// Rows of a panel above its first data row (the border and a header line).
fn header_lines(p: Panel) -> u16 {
    match p {
        Panel::Checks => 1,
        _ => 2,
    }
}

/// Gives each panel its minimum, then hands out the remaining lines one at a time to panels
/// that want more, so on a small terminal every panel keeps a few rows instead of the first
/// one taking them all.
fn share(total: u16, mins: &[u16], wants: &[u16]) -> Vec<u16> {
    let mut left = total.saturating_sub(mins.iter().sum());
    if mins.iter().sum::<u16>() > total {
        // Not even the minimums fit: the first panels that fit whole get their minimum, the
        // rest are hidden (a 1-row panel would only show a border), and the remainder goes to
        // the last panel shown.
        let mut rest = total;
        let mut got: Vec<u16> = mins
            .iter()
            .map(|m| {
                let g = if *m <= rest { *m } else { 0 };
                rest -= g;
                g
            })
            .collect();
        if let Some(last) = got.iter_mut().rev().find(|g| **g > 0) {
            *last += rest;
        }
        return got;
    }
    let mut got: Vec<u16> = mins.to_vec();
    while left > 0 {
        let mut gave = false;
        for i in 0..got.len() {
            if left > 0 && got[i] < wants[i] {
                got[i] += 1;
                left -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    // Whatever nobody wanted goes to the last panel (the checks).
    if let Some(last) = got.last_mut() {
        *last += left;
    }
    got
}

pub fn layout(s: &State, area: Rect) -> EnvLayout {
    let snap = s.env.gpu.as_ref().and_then(|g| g.snapshot.as_ref());
    let gpu_want = match snap {
        Some(snap) if !snap.gpus.is_empty() => 3 + gpu_rows(s).len() as u16,
        Some(snap) => {
            // The no-GPU message wraps: room for all of it.
            let len = snap.error.as_deref().map_or(20, str::len) as u16 + 90;
            2 + len.div_ceil(area.width.saturating_sub(2).max(1)).min(4)
        }
        None => 3,
    };
    let ports_want = 3 + port_rows(s).len().max(1) as u16;
    let left_want = 3 + s
        .env
        .inventory
        .as_ref()
        .map_or(1, |i| i.leftovers.len().max(1)) as u16;
    let checks_want = 2 + s.env.checks.as_ref().map_or(1, |c| c.len().max(1)) as u16;
    let (x, y, w) = (area.x, area.y, area.width);
    if area.width >= 110 {
        let h = share(
            area.height,
            &[3, 4, 3],
            &[gpu_want, ports_want.max(left_want), checks_want],
        );
        let pw = w * 45 / 100;
        EnvLayout {
            gpus: Rect::new(x, y, w, h[0]),
            ports: Rect::new(x, y + h[0], pw, h[1]),
            leftovers: Rect::new(x + pw, y + h[0], w - pw, h[1]),
            checks: Rect::new(x, y + h[0] + h[1], w, h[2]),
        }
    } else {
        let h = share(
            area.height,
            &[3, 3, 3, 3],
            &[gpu_want, ports_want, left_want, checks_want],
        );
        EnvLayout {
            gpus: Rect::new(x, y, w, h[0]),
            ports: Rect::new(x, y + h[0], w, h[1]),
            leftovers: Rect::new(x, y + h[0] + h[1], w, h[2]),
            checks: Rect::new(x, y + h[0] + h[1] + h[2], w, h[3]),
        }
    }
}

/// How many data rows fit in a panel, and the first one shown (keeps the selection visible).
fn window(area: Rect, p: Panel, selected: usize, n: usize) -> (usize, usize) {
    let visible = area.height.saturating_sub(header_lines(p) + 1) as usize;
    if visible == 0 {
        return (0, 0);
    }
    let offset = if selected >= visible {
        selected + 1 - visible
    } else {
        0
    };
    (offset.min(n.saturating_sub(1)), visible)
}

/// The panel (and data row, if any) under a screen position.
pub fn hit(s: &State, body: Rect, pos: Position) -> Option<(Panel, Option<usize>)> {
    let l = layout(s, body);
    for p in Panel::ALL {
        let r = l.rect(p);
        if !r.contains(pos) {
            continue;
        }
        let n = s.rows(p);
        let (offset, visible) = window(r, p, s.selected(p), n);
        let first = r.y + header_lines(p);
        let row = (pos.y >= first && pos.y < first + visible as u16)
            .then(|| offset + (pos.y - first) as usize)
            .filter(|i| *i < n);
        return Some((p, row));
    }
    None
}

fn panel_block<'a>(s: &State, theme: &Theme, p: Panel, title: Line<'a>) -> Block<'a> {
    let focused = s.focus() == p;
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(title)
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let l = layout(s, area);
    draw_gpus(f, s, theme, l.gpus);
    draw_ports(f, s, theme, l.ports);
    draw_leftovers(f, s, theme, l.leftovers);
    draw_checks(f, s, theme, l.checks);
}

/// A text bar such as `████▌░░░`.
pub fn bar(pct: f64, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let cells = (pct.clamp(0.0, 100.0) / 100.0) * width as f64;
    let full = cells.floor() as usize;
    let half = cells - full as f64 >= 0.5 && full < width;
    let mut s = "█".repeat(full);
    if half {
        s.push('▌');
    }
    let used = full + usize::from(half);
    s.push_str(&"░".repeat(width - used));
    s
}

/// Sparkline text of the last `width` values (0-100).
pub fn spark(values: &[u64], width: usize) -> String {
    const TICKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(width);
    let mut s: String = values[start..]
        .iter()
        .map(|v| TICKS[((*v).min(100) as usize * 7 + 50) / 100])
        .collect();
    let pad = width.saturating_sub(values.len() - start);
    s.insert_str(0, &" ".repeat(pad));
    s
}

fn na<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "n/a".into())
}

fn row_style(theme: &Theme, selected: bool, focused: bool) -> Style {
    if selected && focused {
        theme.selected()
    } else if selected {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    } else {
        Style::default()
    }
}

fn pad(s: &str, w: usize) -> String {
    format!("{:<w$}", ellipsize(s, w))
}

fn draw_gpus(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let feed = s.env.gpu.as_ref();
    let snap = feed.and_then(|g| g.snapshot.as_ref());
    let mut title = vec![Span::styled(" GPUs ", theme.title())];
    if let Some(snap) = snap
        && let Some(d) = &snap.driver_version
    {
        title.push(Span::styled(
            format!(
                "driver {d} · CUDA {} ",
                snap.cuda_driver_version.as_deref().unwrap_or("n/a")
            ),
            theme.muted(),
        ));
    }
    let block = panel_block(s, theme, Panel::Gpus, Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(snap) = snap else {
        f.render_widget(Paragraph::new("sampling GPUs…").style(theme.muted()), inner);
        return;
    };
    if snap.gpus.is_empty() {
        let why = snap.error.as_deref().unwrap_or("NVML reports no GPUs");
        let line = Line::from(vec![
            Span::styled("No NVIDIA GPU: ", theme.warn()),
            Span::raw(why.to_string()),
            Span::styled(
                "  (everything else works; install the NVIDIA driver so nvidia-smi runs to see GPUs)",
                theme.muted(),
            ),
        ]);
        f.render_widget(
            Paragraph::new(line).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let w = inner.width as usize;
    // Column widths shrink the name and the history first on narrow terminals.
    let hist_w = if w >= 140 {
        30
    } else if w >= 110 {
        16
    } else {
        0
    };
    let bar_w = if w >= 100 { 10 } else { 5 };
    let fixed = 3 + (bar_w + 6) + (bar_w + 20) + 6 + 14 + hist_w + 6;
    let name_w = w.saturating_sub(fixed).clamp(8, 28);
    let mut lines = vec![Line::styled(
        format!(
            "{:<3}{}{}{}{:<6}{:<14}{}",
            "#",
            pad("Name", name_w + 1),
            pad("Util", bar_w + 6),
            pad("Memory", bar_w + 20),
            "Temp",
            "Power",
            if hist_w > 0 { "Util history" } else { "" }
        ),
        theme.muted().add_modifier(Modifier::BOLD),
    )];
    let rows = gpu_rows(s);
    let sel = s.selected(Panel::Gpus);
    let (offset, visible) = window(area, Panel::Gpus, sel, rows.len());
    let focused = s.focus() == Panel::Gpus;
    for (i, row) in rows.iter().enumerate().skip(offset).take(visible) {
        let style = row_style(theme, i == sel, focused);
        match row {
            GpuRow::Gpu(gi) => {
                let g = &snap.gpus[*gi];
                let hist = feed
                    .map(|f| f.history.utilization(g.index))
                    .unwrap_or_default();
                lines.push(gpu_line(g, &hist, theme, name_w, bar_w, hist_w).style(style));
            }
            GpuRow::Process { gpu, proc_idx, .. } => {
                let p = &snap.gpus[*gpu].processes[*proc_idx];
                let mem = p
                    .used_memory_bytes
                    .map(format_bytes)
                    .unwrap_or_else(|| "n/a".into());
                let (user, cmd) = match (&p.user, &p.cmdline) {
                    (Some(u), Some(c)) => (u.clone(), c.join(" ")),
                    _ => (
                        "?".into(),
                        "(pid not visible here: another user or PID namespace)".into(),
                    ),
                };
                let tag = s
                    .env
                    .inventory
                    .as_ref()
                    .filter(|inv| inv.gpu_procs.contains_key(&p.pid))
                    .and_then(|inv| inv.group_of_pid(p.pid))
                    .filter(|g| g.members.iter().any(|m| m.role.is_some()))
                    .map(|g| {
                        if g.orphaned {
                            " [leftover, orphaned]"
                        } else if g.blocked.is_some() {
                            " [dpgui job]"
                        } else {
                            " [leftover]"
                        }
                    })
                    .unwrap_or("");
                let text = format!(
                    "   └ pid {:<8} {:<10} {:>10}  {}{}",
                    p.pid,
                    ellipsize(&user, 10),
                    mem,
                    cmd,
                    tag
                );
                lines.push(Line::from(ellipsize(&text, w)).style(style));
            }
        }
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn gpu_line<'a>(
    g: &GpuInfo,
    hist: &[u64],
    theme: &Theme,
    name_w: usize,
    bar_w: usize,
    hist_w: usize,
) -> Line<'a> {
    let util = g.utilization_pct.map(f64::from);
    let util_txt = match util {
        Some(u) => format!("{} {:>3.0}% ", bar(u, bar_w), u),
        None => pad("n/a", bar_w + 6),
    };
    let mem_pct = g.memory_used_pct().map(|p| p as f64);
    let mem_txt = match (g.memory_used_bytes, g.memory_total_bytes, mem_pct) {
        (Some(u), Some(t), Some(p)) => format!(
            "{} {:>9}/{:<9}",
            bar(p, bar_w),
            format_bytes(u).replace(" GiB", ""),
            format_bytes(t)
        ),
        _ => "n/a".into(),
    };
    let power = match (g.power_draw_w, g.power_limit_w) {
        (Some(d), Some(l)) => format!("{d:.0}/{l:.0} W"),
        (Some(d), None) => format!("{d:.0} W"),
        _ => "n/a".into(),
    };
    let temp_style = match g.temperature_c {
        Some(t) if t >= 85 => theme.error(),
        Some(t) if t >= 75 => theme.warn(),
        _ => Style::default(),
    };
    Line::from(vec![
        Span::raw(format!("{:<3}", g.index)),
        Span::raw(pad(&g.name.replace("NVIDIA ", ""), name_w)),
        Span::raw(" "),
        Span::styled(
            pad(&util_txt, bar_w + 6),
            Style::default().fg(theme.gauge(util.unwrap_or(0.0))),
        ),
        Span::styled(
            pad(&mem_txt, bar_w + 20),
            Style::default().fg(theme.gauge(mem_pct.unwrap_or(0.0))),
        ),
        Span::styled(format!("{:<6}", na(g.temperature_c, "°C")), temp_style),
        Span::raw(format!("{power:<14}")),
        Span::styled(spark(hist, hist_w), theme.accent()),
    ])
}

fn draw_ports(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let block = panel_block(
        s,
        theme,
        Panel::Ports,
        Line::styled(" Ports ", theme.title()),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(_) = s.env.inventory.as_ref() else {
        f.render_widget(
            Paragraph::new("scanning listeners…").style(theme.muted()),
            inner,
        );
        return;
    };
    let w = inner.width as usize;
    let mut lines = vec![Line::styled(
        format!(
            "{:<7}{:<9}{:<9}{:<10}{:<7}{}",
            "Port", "State", "PID", "User", "Age", "Process"
        ),
        theme.muted().add_modifier(Modifier::BOLD),
    )];
    let rows = port_rows(s);
    let sel = s.selected(Panel::Ports);
    let (offset, visible) = window(area, Panel::Ports, sel, rows.len());
    let focused = s.focus() == Panel::Ports;
    let now = s.now();
    for (i, r) in rows.iter().enumerate().skip(offset).take(visible) {
        let style = row_style(theme, i == sel, focused);
        let port = if r.first {
            r.port.to_string()
        } else {
            String::new()
        };
        let line = match &r.holder {
            None if r.blocked.is_some() => Line::from(vec![
                Span::raw(format!("{port:<7}")),
                Span::styled(r.blocked.clone().unwrap_or_default(), theme.error()),
            ]),
            None => Line::from(vec![
                Span::raw(format!("{port:<7}")),
                Span::styled("free", theme.ok()),
            ]),
            Some(h) if h.pid.is_none() => Line::from(vec![
                Span::raw(format!("{port:<7}")),
                Span::styled(
                    format!("in use by uid {} ({}), pid not visible", h.uid, h.user),
                    theme.error(),
                ),
            ]),
            Some(h) => {
                let state = if h.job_live {
                    ("dpgui job", theme.info())
                } else if h.orphan {
                    ("ORPHAN", theme.error())
                } else {
                    ("in use", theme.warn())
                };
                let age = h
                    .age_secs
                    .map(|a| format_age(std::time::Duration::from_secs(a)))
                    .unwrap_or_default();
                let _ = now;
                let mut what = h
                    .training
                    .clone()
                    .map(|t| format!("[{t}] "))
                    .unwrap_or_default();
                what.push_str(&h.cmdline.join(" "));
                Line::from(vec![
                    Span::raw(format!("{port:<7}")),
                    Span::styled(format!("{:<9}", state.0), state.1),
                    Span::raw(format!(
                        "{:<9}{:<10}{:<7}",
                        h.pid.unwrap_or(0),
                        ellipsize(&h.user, 9),
                        age
                    )),
                    Span::raw(ellipsize(&what, w.saturating_sub(42))),
                ])
            }
        };
        lines.push(line.style(style));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_leftovers(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let n = s.env.inventory.as_ref().map_or(0, |i| i.leftovers.len());
    let title = Line::from(vec![
        Span::styled(" Leftover training processes ", theme.title()),
        Span::styled(
            if n > 0 {
                format!("{n} group{} ", if n == 1 { "" } else { "s" })
            } else {
                String::new()
            },
            theme.warn(),
        ),
    ]);
    let block = panel_block(s, theme, Panel::Leftovers, title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(inv) = s.env.inventory.as_ref() else {
        f.render_widget(
            Paragraph::new("scanning processes…").style(theme.muted()),
            inner,
        );
        return;
    };
    if inv.leftovers.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled(
                "none: no DeepSpeed or diffusion-pipe process outside a live dpgui job",
                theme.ok(),
            )),
            inner,
        );
        return;
    }
    let w = inner.width as usize;
    let mut lines = vec![Line::styled(
        format!(
            "{:<8}{:<6}{:<10}{:<10}{:<8}{:<9}{}",
            "PGID", "Procs", "State", "GPU mem", "Ports", "User", "Run"
        ),
        theme.muted().add_modifier(Modifier::BOLD),
    )];
    let sel = s.selected(Panel::Leftovers);
    let (offset, visible) = window(area, Panel::Leftovers, sel, inv.leftovers.len());
    let focused = s.focus() == Panel::Leftovers;
    for (i, g) in inv.leftovers.iter().enumerate().skip(offset).take(visible) {
        let style = row_style(theme, i == sel, focused);
        let (state, st) = if g.orphaned {
            ("ORPHANED", theme.error())
        } else {
            ("running", theme.warn())
        };
        let ports = g
            .ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let user = g
            .members
            .first()
            .map(|m| m.user.clone())
            .unwrap_or_default();
        let run = g.config.clone().unwrap_or_else(|| {
            g.members
                .iter()
                .find(|m| m.role.is_some())
                .map(|m| m.cmdline.join(" "))
                .unwrap_or_default()
        });
        let line = Line::from(vec![
            Span::raw(format!("{:<8}{:<6}", g.pgid, g.members.len())),
            Span::styled(format!("{state:<10}"), st),
            Span::raw(format!(
                "{:<10}{:<8}{:<9}",
                if g.gpu_memory_bytes > 0 {
                    format_bytes(g.gpu_memory_bytes)
                } else {
                    "-".into()
                },
                if ports.is_empty() {
                    "-".into()
                } else {
                    ellipsize(&ports, 7)
                },
                ellipsize(&user, 8)
            )),
            Span::raw(ellipsize(&run, w.saturating_sub(51))),
        ]);
        lines.push(line.style(style));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

pub fn status_icon(st: &Status, theme: &Theme) -> Span<'static> {
    match st {
        Status::Pass => Span::styled("✓", theme.ok()),
        Status::Warn => Span::styled("!", theme.warn()),
        Status::Fail => Span::styled("✗", theme.error()),
        Status::Pending => Span::styled("…", theme.muted()),
        Status::Info => Span::styled("i", theme.info()),
    }
}

fn draw_checks(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let mut title = vec![Span::styled(" Environment checks ", theme.title())];
    if s.env.probe_running {
        title.push(Span::styled("probing Python… ", theme.muted()));
    }
    let block = panel_block(s, theme, Panel::Checks, Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(checks) = s.env.checks.as_ref() else {
        f.render_widget(
            Paragraph::new("running checks…").style(theme.muted()),
            inner,
        );
        return;
    };
    let w = inner.width as usize;
    let sel = s.selected(Panel::Checks);
    let (offset, visible) = window(area, Panel::Checks, sel, checks.len());
    let focused = s.focus() == Panel::Checks;
    let title_w = checks
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(10)
        .min(26);
    let mut lines = Vec::new();
    for (i, c) in checks.iter().enumerate().skip(offset).take(visible) {
        let style = row_style(theme, i == sel, focused);
        let mut spans = vec![
            Span::raw(" "),
            status_icon(&c.status, theme),
            Span::raw(format!(" {} ", pad(&c.title, title_w))),
        ];
        let mut rest = c.detail.clone();
        if let Some(fix) = &c.fix
            && !matches!(c.status, Status::Pass)
        {
            rest.push_str("  → ");
            rest.push_str(fix);
        }
        spans.push(Span::raw(ellipsize(&rest, w.saturating_sub(title_w + 4))));
        lines.push(Line::from(spans).style(style));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_screens_hide_panels_rather_than_show_borders_only() {
        assert_eq!(share(10, &[3, 3, 3, 3], &[9, 9, 9, 9]), vec![3, 3, 4, 0]);
        assert_eq!(share(2, &[3, 3], &[5, 5]), vec![0, 0]);
        // Enough room: minimums first, then one line at a time to whoever wants more.
        assert_eq!(share(14, &[3, 3, 3], &[4, 9, 3]), vec![4, 7, 3]);
        // Nobody wants the rest: the last panel takes it.
        assert_eq!(share(20, &[3, 3], &[3, 3]), vec![3, 17]);
    }

    #[test]
    fn bars_and_sparks() {
        assert_eq!(bar(0.0, 4), "░░░░");
        assert_eq!(bar(100.0, 4), "████");
        assert_eq!(bar(50.0, 4), "██░░");
        assert_eq!(bar(62.5, 4), "██▌░");
        assert_eq!(spark(&[0, 100], 4), "  ▁█");
        assert_eq!(spark(&[0, 50, 100], 2), "▅█");
    }
}
