//! The keys of each tab, as shown by the help overlay and the status line hints. `app::update`
//! implements them; a unit test there checks each listed key does something.

use super::app::Tab;

pub const GLOBAL: &[(&str, &str)] = &[
    ("1-4", "switch tab"),
    ("Tab / Shift-Tab", "next / previous tab"),
    ("?", "toggle this help"),
    ("R / F5", "refresh now"),
    ("Esc", "close a window, clear the message"),
    ("q / Ctrl-C", "quit (running jobs keep running)"),
    ("mouse", "click a tab or a row; wheel scrolls"),
];

pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("← → / h l", "move between panels"),
    ("↑ ↓ / k j", "move the selection"),
    ("g G / Home End", "first / last row"),
    ("PgUp PgDn", "move by 10 rows"),
    ("Enter", "details of the selected row"),
    (
        "x",
        "end the selected process group (leftover, port holder or GPU process): confirm first",
    ),
    ("r", "re-run the environment checks (Python probe)"),
];

pub fn for_tab(tab: Tab) -> &'static [(&'static str, &'static str)] {
    match tab {
        Tab::Environment => ENVIRONMENT,
        _ => &[],
    }
}

/// Short hints for the status line.
pub fn hints(tab: Tab) -> &'static str {
    match tab {
        Tab::Environment => {
            "←→ panel  ↑↓ select  ⏎ details  x end group  r re-check  ? help  q quit"
        }
        _ => "1-4 tabs  ? help  q quit",
    }
}
