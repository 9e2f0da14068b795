//! Overlays: help, details of the selected row, stop confirmation and its result.

use super::centered;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::environment::{GpuRow, gpu_rows, port_rows, status_icon};
use crate::system::inventory::LeftoverGroup;
use crate::system::procs::format_age;
use crate::system::signals::Fate;
use crate::tui::app::{Overlay, Panel, State};
use crate::tui::keys;
use crate::tui::theme::Theme;
use crate::units::format_bytes;

/// Rows `lines` take when wrapped at `width` columns.
fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

pub(crate) fn popup(
    f: &mut Frame,
    theme: &Theme,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    footer: &str,
) {
    let want_w = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(20)
        .max(footer.len() as u16 + 4)
        .max(title.len() as u16 + 6)
        + 4;
    let w = want_w.min(area.width * 9 / 10).max(10).min(area.width);
    // Height from the wrapped text, so nothing is cut off below the frame when it fits at all.
    let h = wrapped_rows(&lines, w.saturating_sub(2)) + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Line::styled(format!(" {title} "), theme.title()))
        .title_bottom(Line::styled(format!(" {footer} "), theme.muted()));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .style(theme.base())
            .wrap(Wrap { trim: false }),
        r,
    );
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    match &s.overlay {
        Overlay::None => {}
        Overlay::Config(o) => super::config::draw_overlay(f, s, o, theme, area),
        Overlay::Downloads => super::hub::draw_downloads(f, s, theme, area),
        Overlay::Help => help(f, s, theme, area),
        Overlay::Details => details(f, s, theme, area),
        Overlay::ConfirmStop { group, second } => confirm(f, s, theme, area, group, *second),
        Overlay::Stopping { pgid, pids } => popup(
            f,
            theme,
            area,
            "Ending processes",
            vec![
                Line::from(format!("Process group {pgid}: {pids} process(es).")),
                Line::from(format!(
                    "SIGTERM sent; SIGKILL after {}s to whatever is left.",
                    s.info.stop_grace_secs
                )),
            ],
            "please wait",
        ),
        Overlay::StopResult(r) => {
            let mut lines = vec![Line::styled(r.headline(), theme.title())];
            lines.push(Line::raw(""));
            for o in &r.outcomes {
                let style = match o.fate {
                    Fate::Terminated | Fate::Interrupted => theme.ok(),
                    Fate::AlreadyGone => theme.muted(),
                    f if f.is_problem() => theme.error(),
                    _ => theme.warn(),
                };
                let mut txt = o.fate.describe().to_string();
                if let Some(e) = &o.error {
                    txt.push_str(&format!(" ({e})"));
                }
                lines.push(Line::from(vec![
                    Span::raw(format!("pid {:<8} ", o.pid)),
                    Span::styled(txt, style),
                ]));
            }
            for p in &r.newcomers {
                lines.push(Line::styled(
                    format!("pid {p:<8} joined the group after confirmation: not signalled"),
                    theme.warn(),
                ));
            }
            popup(f, theme, area, "Result", lines, "Esc close");
        }
        Overlay::ConfirmJobStop { job, kind, pids } => {
            use crate::jobs::journal::StopKind;
            let what = match kind {
                StopKind::SaveAndStop => "Save a resumable checkpoint, then stop (touches <run dir>/save_quit; diffusion-pipe exits 0 after saving).".to_string(),
                StopKind::SaveNow => "Save a checkpoint now and keep training.".to_string(),
                StopKind::Stop => format!(
                    "SIGINT to every process of the job, SIGTERM after {}s, SIGKILL after {}s more. No checkpoint is saved.",
                    s.info.job_interrupt_grace_secs, s.info.job_terminate_grace_secs
                ),
                StopKind::Kill => "SIGKILL to every process of the job at once. No checkpoint is saved.".to_string(),
            };
            let style = if *kind == StopKind::Kill {
                theme.error()
            } else {
                theme.warn()
            };
            popup(
                f,
                theme,
                area,
                &format!("{} job {job}?", kind.label()),
                vec![
                    Line::styled(what, style),
                    Line::raw(""),
                    Line::from(format!(
                        "{pids} process(es) carry this job's tag; each is checked (pid and start time) before any signal."
                    )),
                    Line::raw(""),
                    Line::styled("y / Enter: do it    n / Esc: cancel", theme.title()),
                ],
                "y confirm · n cancel",
            );
        }
        Overlay::JobStopping { job, kind } => popup(
            f,
            theme,
            area,
            "Stopping",
            vec![Line::from(format!(
                "job {job}: {} under way…",
                kind.label()
            ))],
            "please wait",
        ),
        Overlay::JobStopResult(r) => {
            let mut lines = vec![Line::styled(
                r.headline(),
                if r.clean() { theme.ok() } else { theme.error() },
            )];
            lines.push(Line::raw(""));
            if let Some(l) = &r.ladder {
                for o in &l.outcomes {
                    let style = match o.fate {
                        Fate::Terminated | Fate::Interrupted => theme.ok(),
                        Fate::AlreadyGone => theme.muted(),
                        f if f.is_problem() => theme.error(),
                        _ => theme.warn(),
                    };
                    lines.push(Line::from(vec![
                        Span::raw(format!("pid {:<8} ", o.pid)),
                        Span::styled(o.fate.describe(), style),
                    ]));
                }
            }
            for p in &r.remaining {
                lines.push(Line::styled(
                    format!("pid {:<8} STILL RUNNING: {}", p.pid, p.command),
                    theme.error(),
                ));
            }
            popup(f, theme, area, "Job stopped", lines, "Esc close");
        }
    }
}

fn help(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let mut lines = vec![Line::styled(
        format!("{} tab", s.tab.title()),
        theme.title(),
    )];
    let tab_keys = keys::for_tab(s.tab);
    if tab_keys.is_empty() {
        lines.push(Line::styled("  (no keys of its own yet)", theme.muted()));
    }
    let kw = keys::GLOBAL
        .iter()
        .chain(tab_keys)
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(8);
    for (k, d) in tab_keys {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {k:<kw$}  "),
                theme.accent().add_modifier(Modifier::BOLD),
            ),
            Span::raw(*d),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Everywhere", theme.title()));
    for (k, d) in keys::GLOBAL {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {k:<kw$}  "),
                theme.accent().add_modifier(Modifier::BOLD),
            ),
            Span::raw(*d),
        ]));
    }
    popup(f, theme, area, "Help", lines, "? or Esc to close");
}

fn kv<'a>(theme: &Theme, k: &str, v: String) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<10} "), theme.muted()),
        Span::raw(v),
    ])
}

fn details(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let mut lines = Vec::new();
    let mut title = "Details".to_string();
    match s.focus() {
        Panel::Gpus => {
            let snap = s.env.gpu.as_ref().and_then(|g| g.snapshot.as_ref());
            match (gpu_rows(s).get(s.selected(Panel::Gpus)), snap) {
                (Some(GpuRow::Gpu(i)), Some(snap)) => {
                    let g = &snap.gpus[*i];
                    title = format!("GPU {}", g.index);
                    lines.push(kv(theme, "name", g.name.clone()));
                    lines.push(kv(theme, "uuid", g.uuid.clone().unwrap_or("n/a".into())));
                    lines.push(kv(theme, "processes", g.processes.len().to_string()));
                    for p in &g.processes {
                        lines.push(Line::raw(format!(
                            "  pid {} {} {}",
                            p.pid,
                            p.used_memory_bytes
                                .map(format_bytes)
                                .unwrap_or("n/a".into()),
                            p.cmdline.as_ref().map(|c| c.join(" ")).unwrap_or_default()
                        )));
                    }
                }
                (Some(GpuRow::Process { gpu, proc_idx, .. }), Some(snap)) => {
                    let p = &snap.gpus[*gpu].processes[*proc_idx];
                    title = format!("pid {} on GPU {}", p.pid, snap.gpus[*gpu].index);
                    lines.push(kv(theme, "user", p.user.clone().unwrap_or("?".into())));
                    lines.push(kv(
                        theme,
                        "memory",
                        p.used_memory_bytes
                            .map(format_bytes)
                            .unwrap_or("n/a".into()),
                    ));
                    lines.push(kv(
                        theme,
                        "command",
                        p.cmdline
                            .as_ref()
                            .map(|c| c.join(" "))
                            .unwrap_or("not visible from here".into()),
                    ));
                    if let Some(g) = s.env.inventory.as_ref().and_then(|i| i.group_of_pid(p.pid)) {
                        group_lines(&mut lines, theme, g);
                    }
                }
                _ => {}
            }
        }
        Panel::Ports => {
            if let Some(r) = port_rows(s).get(s.selected(Panel::Ports)) {
                title = format!("Port {}", r.port);
                match &r.holder {
                    None if r.blocked.is_some() => lines.push(Line::styled(
                        format!(
                            "No listening socket was found, but the port cannot be bound: {}",
                            r.blocked.clone().unwrap_or_default()
                        ),
                        theme.error(),
                    )),
                    None => lines.push(Line::styled(
                        "Nothing listens on this port and it can be bound (IPv4 and IPv6 checked).",
                        theme.ok(),
                    )),
                    Some(h) if h.pid.is_none() => {
                        lines.push(Line::styled(
                            format!(
                                "In use by uid {} ({}); its pid is not visible to this user.",
                                h.uid, h.user
                            ),
                            theme.error(),
                        ));
                        lines.push(Line::raw(
                            "Run `sudo dpgui ports --port N` to see who holds it.",
                        ));
                    }
                    Some(h) => {
                        lines.push(kv(theme, "pid", h.pid.unwrap_or(0).to_string()));
                        lines.push(kv(theme, "user", format!("{} (uid {})", h.user, h.uid)));
                        lines.push(kv(theme, "command", h.cmdline.join(" ")));
                        lines.push(kv(theme, "parent", h.ppid.unwrap_or(0).to_string()));
                        lines.push(kv(theme, "group", h.pgid.unwrap_or(0).to_string()));
                        lines.push(kv(
                            theme,
                            "started",
                            format!(
                                "{} ({} ago)",
                                h.started.clone().unwrap_or_default(),
                                format_age(std::time::Duration::from_secs(h.age_secs.unwrap_or(0)))
                            ),
                        ));
                        lines.push(kv(theme, "listens", h.addresses.join(", ")));
                        lines.push(kv(
                            theme,
                            "training",
                            h.training.clone().unwrap_or("no".into()),
                        ));
                        lines.push(kv(
                            theme,
                            "orphan",
                            if h.orphan { "yes" } else { "no" }.into(),
                        ));
                        lines.push(kv(
                            theme,
                            "dpgui job",
                            match (&h.job, h.job_live) {
                                (Some(j), true) => format!("{j} (running)"),
                                (Some(j), false) => format!("{j} (supervisor gone)"),
                                _ => "no".into(),
                            },
                        ));
                    }
                }
            }
        }
        Panel::Leftovers => {
            if let Some(g) = s
                .env
                .inventory
                .as_ref()
                .and_then(|i| i.leftovers.get(s.selected(Panel::Leftovers)))
            {
                title = format!("Process group {}", g.pgid);
                group_lines(&mut lines, theme, g);
                lines.push(Line::styled("x: end this group", theme.muted()));
            }
        }
        Panel::Checks => {
            if let Some(c) = s
                .env
                .checks
                .as_ref()
                .and_then(|c| c.get(s.selected(Panel::Checks)))
            {
                title = c.title.clone();
                lines.push(Line::from(vec![
                    status_icon(&c.status, theme),
                    Span::raw(format!(" {}", c.detail)),
                ]));
                if let Some(fix) = &c.fix {
                    lines.push(Line::raw(""));
                    lines.push(Line::from(vec![
                        Span::styled("fix: ", theme.accent()),
                        Span::raw(fix.clone()),
                    ]));
                }
            }
        }
    }
    popup(f, theme, area, &title, lines, "Esc close");
}

fn group_lines(lines: &mut Vec<Line>, theme: &Theme, g: &LeftoverGroup) {
    if let Some(r) = &g.orphan_reason {
        lines.push(Line::styled(format!("orphaned: {r}"), theme.error()));
    }
    if let Some(j) = &g.dead_job {
        lines.push(Line::styled(
            format!("from dpgui job {j}, whose supervisor is gone"),
            theme.warn(),
        ));
    }
    if let Some(c) = &g.config {
        lines.push(kv(theme, "config", c.clone()));
    }
    lines.push(kv(
        theme,
        "holds",
        format!(
            "GPU memory {}, ports {}",
            format_bytes(g.gpu_memory_bytes),
            if g.ports.is_empty() {
                "none".to_string()
            } else {
                format!("{:?}", g.ports)
            }
        ),
    ));
    for m in &g.members {
        lines.push(Line::raw(format!(
            "  pid {:<8} {:<9} {:<17} {}",
            m.pid,
            m.user,
            m.role.clone().unwrap_or_default(),
            m.cmdline.join(" ")
        )));
    }
}

fn confirm(f: &mut Frame, s: &State, theme: &Theme, area: Rect, g: &LeftoverGroup, second: bool) {
    let inner_w = usize::from((area.width * 9 / 10).saturating_sub(4)).max(10);
    let mut lines = Vec::new();
    // The other-user warning comes first so no terminal size can hide it.
    if g.other_user {
        let mut users: Vec<&str> = g.members.iter().map(|m| m.user.as_str()).collect();
        users.dedup();
        lines.push(Line::styled(
            format!("ANOTHER USER'S PROCESSES ({})", users.join(", ")),
            theme.error(),
        ));
        lines.push(Line::styled(
            if second {
                "Second confirmation: press Y (capital) to end them as root."
            } else {
                "Ending them needs two confirmations."
            },
            theme.error(),
        ));
    }
    let pids: Vec<String> = g.members.iter().map(|m| m.pid.to_string()).collect();
    lines.push(Line::styled(
        format!(
            "These {} process(es) of group {} will be signalled: {}",
            g.members.len(),
            g.pgid,
            pids.join(" ")
        ),
        theme.title(),
    ));
    // One line per member, cut to the width; as many as fit, and say how many do not.
    let fixed = 4 + u16::from(g.other_user) * 2;
    let room = usize::from(area.height.saturating_sub(fixed + 4));
    for m in g.members.iter().take(room) {
        lines.push(Line::raw(crate::units::ellipsize(
            &format!("  pid {:<8} {:<9} {}", m.pid, m.user, m.cmdline.join(" ")),
            inner_w,
        )));
    }
    if g.members.len() > room {
        lines.push(Line::styled(
            format!(
                "  … {} more (all pids are listed above; Enter in the list shows each)",
                g.members.len() - room
            ),
            theme.muted(),
        ));
    }
    lines.push(Line::raw(crate::units::ellipsize(
        &format!(
            "SIGTERM, then SIGKILL after {}s; each pid's start time and owner are re-checked first.",
            s.info.stop_grace_secs
        ),
        inner_w,
    )));
    let footer = if g.other_user && second {
        "Y end them · n/Esc cancel"
    } else {
        "y end them · n/Esc cancel"
    };
    let title = if g.other_user {
        "End ANOTHER USER'S processes?"
    } else {
        "End process group?"
    };
    popup(f, theme, area, title, lines, footer);
}
