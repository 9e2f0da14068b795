//! The keys of each tab, as shown by the help overlay and the status line hints. `app::update`
//! implements them; a unit test there checks each listed key does something.

use super::app::{State, Tab};

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

/// The Jobs tab has three modes; entries with an empty key head each mode's keys.
pub const JOBS: &[(&str, &str)] = &[
    ("", "── job list ──"),
    ("↑ ↓ / k j", "select a job (g G / Home End: first / last)"),
    ("Enter / l", "open the job view (logs of every rank)"),
    ("n", "launch a new job (dialog)"),
    ("s", "save a checkpoint, then stop (confirm first)"),
    ("c", "save a checkpoint now and keep training"),
    (
        "x",
        "stop: SIGINT, then SIGTERM, then SIGKILL (confirm first)",
    ),
    ("K", "kill at once with SIGKILL (confirm first)"),
    ("", "── job view ──"),
    ("Tab / → , Shift-Tab / ←", "focus the next / previous pane"),
    ("L", "focus the launcher pane"),
    (
        "z / Enter",
        "zoom: the focused pane fills the view, or back",
    ),
    ("↑ ↓ / k j", "scroll the focused pane by a line"),
    ("PgUp PgDn", "scroll by half a screen"),
    ("g / Home", "scroll to the oldest kept line"),
    ("G / End / f", "follow the newest lines"),
    ("/", "search the focused pane (Enter find, Esc cancel)"),
    ("n N", "next / previous match"),
    (
        "s c x K",
        "save & stop, save now, stop, kill (as in the list)",
    ),
    ("Esc / h", "back to the job list"),
    ("", "── launch dialog ──"),
    ("↑ ↓ / k j", "move"),
    ("space", "tick a GPU or an option"),
    ("a", "tick all GPUs, or none"),
    ("/ or e", "type a config path"),
    (
        "v",
        "extra environment for the ranks: KEY=VALUE ... (options step)",
    ),
    (
        "e",
        "review step: show the leftover group holding a selected GPU in the Environment tab",
    ),
    (
        "Enter / Tab",
        "next step (from the options: run the pre-flight)",
    ),
    ("Shift-Tab", "previous step"),
    ("Enter / y", "launch, once the pre-flight has no ✗"),
    ("r", "run the pre-flight again"),
    (
        "Esc",
        "close the dialog (from the review: back to the options)",
    ),
];

pub fn for_tab(tab: Tab) -> &'static [(&'static str, &'static str)] {
    match tab {
        Tab::Environment => ENVIRONMENT,
        Tab::Jobs => JOBS,
        _ => &[],
    }
}

/// Short hints for the status line.
pub fn hints(tab: Tab) -> &'static str {
    match tab {
        Tab::Environment => {
            "←→ panel  ↑↓ select  ⏎ details  x end group  r re-check  ? help  q quit"
        }
        Tab::Jobs => "↑↓ select  ⏎ open  n new job  s save&stop  c save  x stop  K kill  ? help",
        _ => "1-4 tabs  ? help  q quit",
    }
}

/// The status line hints for what is on screen: the Jobs tab's job view, launch dialog and
/// search prompt have keys of their own.
pub fn hints_for(s: &State) -> &'static str {
    if s.tab != Tab::Jobs {
        return hints(s.tab);
    }
    if let Some(d) = &s.jobs.launch {
        use super::jobs::LaunchStep;
        if d.typing.is_some() {
            return "type a config path  ⏎ use it  Esc stop typing";
        }
        return match d.step {
            LaunchStep::Config => "↑↓ select  ⏎ next  / type a path  Esc close",
            LaunchStep::Gpus => "↑↓ move  space tick  a all  ⏎ next  ⇧Tab back  Esc close",
            LaunchStep::Options => {
                "↑↓ move  space toggle  v extra env  ⏎ pre-flight  ⇧Tab back  Esc close"
            }
            LaunchStep::Review if d.review.as_ref().is_some_and(|r| r.failed) => {
                "fix the ✗ items  r re-check  Esc back"
            }
            LaunchStep::Review => "⏎ launch  r re-check  Esc back",
        };
    }
    if s.jobs.search.is_some() {
        return "type to search this pane  ⏎ find  Esc cancel";
    }
    if s.jobs.logs.is_some() {
        return "Tab pane  z zoom  ↑↓ PgUp PgDn scroll  G follow  / search  n N  Esc list  ? help";
    }
    hints(Tab::Jobs)
}
