//! Drawing the dashboard without a terminal: one frame into a `TestBackend`, and its text.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use dpgui::tui::app::State;
use dpgui::tui::theme::Theme;
use dpgui::tui::views;

/// Terminal sizes every view must survive: small, one-cell, empty, and lopsided.
#[allow(dead_code)] // Not every test binary that includes this module draws tiny terminals.
pub const TINY_SIZES: [(u16, u16); 7] = [
    (40, 12),
    (20, 5),
    (1, 1),
    (0, 0),
    (10, 3),
    (200, 2),
    (3, 40),
];

/// One frame of `s` at its size, in the dark theme.
pub fn render(s: &State) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(s.size.width, s.size.height)).unwrap();
    let theme = Theme::builtin("dark").unwrap();
    t.draw(|f| views::draw(f, s, &theme)).unwrap();
    t
}

/// The frame's symbols, one line per row.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}
