//! Drawing. Views read `State` and never change it; layout helpers are shared with the mouse
//! handling in `app` so clicks land where things are drawn.

pub mod config;
pub mod datasets;
pub mod dialogs;
pub mod environment;
pub mod hub;
pub mod jobs;

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{Level, State, Tab};
use super::keys;
use super::theme::Theme;

pub struct FrameLayout {
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
}

/// A `w`×`h` rectangle in the middle of `area` (clipped to it): where dialogs go.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn frame_layout(area: Rect) -> FrameLayout {
    let tabs = Rect::new(area.x, area.y, area.width, area.height.min(1));
    let status_h = u16::from(area.height >= 2);
    let status = Rect::new(
        area.x,
        area.y + area.height.saturating_sub(status_h),
        area.width,
        status_h,
    );
    let body = Rect::new(
        area.x,
        area.y + tabs.height,
        area.width,
        area.height.saturating_sub(tabs.height + status_h),
    );
    FrameLayout { tabs, body, status }
}

const BRAND: &str = " dpgui ";

fn tab_label(t: Tab) -> String {
    format!(" {} {} ", t.index() + 1, t.title())
}

/// Screen rectangles of the tab titles.
pub fn tab_rects(area: Rect) -> Vec<Rect> {
    let mut x = area.x + BRAND.len() as u16 + 1;
    Tab::ALL
        .iter()
        .map(|t| {
            let w = tab_label(*t).chars().count() as u16;
            let r = Rect::new(x, area.y, w, 1).intersection(area);
            x = x.saturating_add(w + 1);
            r
        })
        .collect()
}

pub fn tab_at(area: Rect, pos: Position) -> Option<usize> {
    tab_rects(area).iter().position(|r| r.contains(pos))
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme) {
    let area = f.area();
    f.render_widget(Paragraph::new("").style(theme.base()), area);
    let l = frame_layout(area);
    draw_tabs(f, s, theme, l.tabs);
    match s.tab {
        Tab::Environment => environment::draw(f, s, theme, l.body),
        Tab::Jobs => jobs::draw(f, s, theme, l.body),
        Tab::Config => config::draw(f, s, theme, l.body),
        Tab::Datasets => datasets::draw(f, s, theme, l.body),
    }
    draw_status(f, s, theme, l.status);
    dialogs::draw(f, s, theme, area);
}

fn draw_tabs(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    let mut spans = vec![Span::styled(BRAND, theme.title()), Span::raw(" ")];
    for t in Tab::ALL {
        let style = if t == s.tab {
            theme.tab_active()
        } else {
            theme.muted()
        };
        spans.push(Span::styled(tab_label(t), style));
        spans.push(Span::raw(" "));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    if let Some(h) = s.env.inventory.as_ref().and_then(|i| i.host.as_ref()) {
        let cpu = h
            .cpu_pct
            .map(|p| format!("{p:.0}%"))
            .unwrap_or_else(|| "…".into());
        let text = format!(
            "{} · CPU {cpu} of {} · RAM {}/{} · load {:.2} ",
            h.hostname,
            h.cpus,
            crate::units::format_bytes(h.memory_used_bytes).replace(" GiB", ""),
            crate::units::format_bytes(h.memory_total_bytes),
            h.load1
        );
        let free = (area.width as usize).saturating_sub(used);
        if text.chars().count() < free {
            spans.push(Span::raw(" ".repeat(free - text.chars().count())));
            spans.push(Span::styled(text, theme.muted()));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(f: &mut Frame, s: &State, theme: &Theme, area: Rect) {
    if area.height == 0 {
        return;
    }
    // While downloads run, their progress takes the place of the version.
    let right = match s.hub.summary() {
        Some(sum) => format!(" {sum} "),
        None => format!(
            " dpgui {} · {} · {}s ",
            s.info.version, s.info.theme, s.info.refresh_secs
        ),
    };
    let (text, style) = match &s.status {
        Some((Level::Error, m)) => (m.clone(), theme.error()),
        Some((Level::Warn, m)) => (m.clone(), theme.warn()),
        Some((Level::Info, m)) => (m.clone(), theme.info()),
        None => match config::status_diag(s) {
            Some((sev, m)) => (m, config::severity_style(theme, sev)),
            None => (keys::hints_for(s).to_string(), theme.muted()),
        },
    };
    let width = area.width as usize;
    let right_w = right.chars().count();
    let left_w = width.saturating_sub(right_w + 1);
    let left = crate::units::ellipsize(&text, left_w);
    let pad = width.saturating_sub(left.chars().count() + right_w);
    let mut spans = vec![Span::styled(format!(" {left}"), style)];
    if width > right_w + 10 {
        spans.push(Span::raw(" ".repeat(pad.saturating_sub(1))));
        spans.push(Span::styled(right, theme.muted()));
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.status().patch(Style::default())),
        area,
    );
}
