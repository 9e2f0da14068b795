//! Tabs whose issues have not landed yet: say what is coming and what works today.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::app::Tab;
use crate::tui::theme::Theme;

fn text(tab: Tab) -> (&'static str, &'static [&'static str]) {
    match tab {
        Tab::Datasets => (
            "Datasets: coming",
            &[
                "What diffusion-pipe will really see in each [[directory]]: media, captions,",
                "aspect-ratio and frame buckets, and the items it will drop, before hours of caching.",
                "",
                "Today: `dpgui doctor` checks the environment; the Environment tab shows GPUs,",
                "ports and leftover training processes.",
            ],
        ),
        // Every other tab has its own view.
        _ => ("", &[]),
    }
}

pub fn draw(f: &mut Frame, tab: Tab, theme: &Theme, area: Rect) {
    let (title, body) = text(tab);
    let lines: Vec<Line> = body.iter().map(|l| Line::from(*l)).collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(false))
        .title(Line::styled(format!(" {title} "), theme.title()));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .style(theme.base())
            .wrap(Wrap { trim: false }),
        area,
    );
}
