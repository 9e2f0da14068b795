//! The keys of each tab, as shown by the help overlay and the status line hints. `app::update`
//! implements them; a unit test there checks each listed key does something.

use crossterm::event::KeyCode;

use super::app::{State, Tab};

pub const GLOBAL: &[(&str, &str)] = &[
    ("1-4", "switch tab"),
    ("Tab / Shift-Tab", "next / previous tab"),
    ("? / F1", "toggle this help (F1 also while typing)"),
    ("R / F5", "refresh now"),
    ("F6", "Hugging Face downloads and the hub cache"),
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

/// The Datasets tab: the list, a directory, the media browser, the caches.
pub const DATASETS: &[(&str, &str)] = &[
    ("", "── dataset list ──"),
    (
        "↑ ↓ / k j",
        "select a dataset (g G / Home End: first / last)",
    ),
    (
        "Enter / l",
        "open its first [[directory]]: buckets and problems",
    ),
    (
        "r / f",
        "scan again (unchanged files come from the scan cache) / scan every file afresh",
    ),
    ("x", "cancel the scan under way"),
    (
        "t",
        "the training config whose batch sizes give the steps per epoch (cycles)",
    ),
    (
        "+ / -",
        "double / halve the GPU count for the steps per epoch",
    ),
    ("c", "the caches of its directories"),
    ("a / d", "add a directory / remove an added one"),
    ("e", "edit the dataset config in the Config tab"),
    ("", "── directory ──"),
    ("↑ ↓ / k j", "select a problem"),
    ("Enter", "browse the files of the problem"),
    ("m", "browse every medium of the directory"),
    ("Tab / ] , Shift-Tab / [", "next / previous [[directory]]"),
    ("Esc / h", "back to the list"),
    ("", "── media browser ──"),
    ("↑ ↓ / n p", "next / previous file (PgUp PgDn, g G)"),
    (
        "e / Enter",
        "edit the caption (creates name.txt when there is none)",
    ),
    ("Ctrl-S", "save the caption (atomic)"),
    (
        "Esc",
        "stop editing (asks when unsaved: s save, d discard); again: back",
    ),
    ("v", "show / hide the image preview"),
    ("", "── caches ──"),
    ("D / Delete", "delete the selected cache (confirm with y)"),
];

/// The Config tab: a file list, the editor and the problems list.
pub const CONFIG: &[(&str, &str)] = &[
    ("", "── file list ──"),
    (
        "↑ ↓ / k j",
        "select a config (g G / Home End: first / last)",
    ),
    ("Enter / l", "open it in the editor"),
    (
        "n / o",
        "new config from a template (model type, then a name) / open a path",
    ),
    ("c / r", "duplicate / rename the selected config"),
    ("d / Delete", "delete the selected config (confirm first)"),
    ("w", "close the open config"),
    ("e / → / Tab", "to the editor; Shift-Tab: to the problems"),
    ("", "── editor ──"),
    (
        "typing",
        "edits: Tab indents, Shift-arrows select, PgUp PgDn page",
    ),
    ("Ctrl-Z / Ctrl-Y", "undo / redo (also Ctrl-U / Ctrl-R)"),
    (
        "Alt-C Ctrl-X Ctrl-V",
        "copy / cut / paste (Alt-W copies too, Alt-A selects all)",
    ),
    (
        "Ctrl-F",
        "search; F3 / Ctrl-G next match, Shift-F3 previous",
    ),
    ("F8", "next problem in this file (Shift-F8: previous)"),
    (
        "Ctrl-O / F2",
        "path picker for the key under the cursor: writes the path chosen",
    ),
    (
        "F4",
        "download for the key under the cursor from the Hugging Face Hub (path written)",
    ),
    (
        "Ctrl-T",
        "the dataset config that `dataset =` names, and back",
    ),
    (
        "Ctrl-S",
        "save (atomic; the previous version is kept as NAME.bak)",
    ),
    (
        "Ctrl-L",
        "launch it: the Jobs tab's dialog (asks to save first)",
    ),
    ("Esc", "to the file list (the tab keys work again)"),
    ("", "── problems ──"),
    ("↑ ↓ / k j, Enter", "select, put the cursor on it"),
    ("Esc / Tab", "to the file list; Shift-Tab: to the editor"),
    ("", "── dialogs ──"),
    ("s / d / Esc", "unsaved changes: save, discard, cancel"),
    (
        "r / o / Esc",
        "changed on disk: reload, overwrite with yours, cancel",
    ),
    (
        "Enter Space Bksp . ~",
        "path picker: open / choose / up / hidden files / home (F4: the hub instead)",
    ),
    (
        "Enter ↑↓ Esc",
        "hub dialog: list the repo, choose a file or folder, then cache or a directory",
    ),
];

pub fn for_tab(tab: Tab) -> &'static [(&'static str, &'static str)] {
    match tab {
        Tab::Environment => ENVIRONMENT,
        Tab::Jobs => JOBS,
        Tab::Config => CONFIG,
        Tab::Datasets => DATASETS,
    }
}

/// Short hints for the status line.
pub fn hints(tab: Tab) -> &'static str {
    match tab {
        Tab::Environment => {
            "←→ panel  ↑↓ select  ⏎ details  x end group  r re-check  ? help  q quit"
        }
        Tab::Jobs => "↑↓ select  ⏎ open  n new job  s save&stop  c save  x stop  K kill  ? help",
        Tab::Config => "↑↓ select  ⏎ open  n new  o open path  c copy  r rename  d delete  ? help",
        Tab::Datasets => {
            "↑↓ select  ⏎ open  r rescan  x cancel  t training  +/- GPUs  c caches  a add dir  ? help"
        }
    }
}

/// The status line hints for what is on screen: the Jobs tab's job view, launch dialog and
/// search prompt have keys of their own.
pub fn hints_for(s: &State) -> &'static str {
    if s.tab == Tab::Config {
        return config_hints(s);
    }
    if s.tab == Tab::Datasets {
        return datasets_hints(s);
    }
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

fn config_hints(s: &State) -> &'static str {
    use super::config::Focus;
    let c = &s.config;
    if c.main.is_none() {
        return hints(Tab::Config);
    }
    match c.focus {
        Focus::Editor if c.search.is_some() => "type to search  ⏎ find  Esc cancel",
        Focus::Editor => {
            "^S save  ^Z undo  ^F find  ^O pick path  F4 hub  ^T dataset  F8 problem  ^L launch  Esc files  F1 help"
        }
        Focus::Diagnostics => "↑↓ select  ⏎ go to it  Esc files  ⇧Tab editor  ? help",
        Focus::Files => {
            "⏎ open  e editor  n new  c copy  r rename  d delete  w close  ^S save  ^L launch  ? help"
        }
    }
}

fn datasets_hints(s: &State) -> &'static str {
    use super::datasets::{Ask, View};
    let d = &s.datasets;
    match (&d.ask, &d.view) {
        (Some(Ask::AddDirectory(_)), _) => "type a directory  ⏎ add  Esc cancel",
        (Some(Ask::DeleteCache { .. }), _) => "y delete the cache  any other key keeps it",
        (_, View::List) => hints(Tab::Datasets),
        (_, View::Directory { .. }) => {
            "↑↓ problem  ⏎ its files  m all media  Tab next directory  c caches  Esc back  ? help"
        }
        (_, View::Browser(b)) if b.edit.is_some() => "type the caption  ^S save  Esc done",
        (_, View::Browser(_)) => "↑↓/n p file  e edit caption  v preview  Esc back  ? help",
        (_, View::Cache { .. }) => "↑↓ select  D delete (asks)  Esc back",
    }
}

/// A list's selection moved by the usual keys (↑↓ and j/k one row, PgUp/PgDn ten, Home/End and
/// g/G to the ends) in a list of `n` rows; None when `code` is not one of them.
pub fn list_move(sel: usize, n: usize, code: KeyCode) -> Option<usize> {
    let last = n.saturating_sub(1);
    Some(match code {
        KeyCode::Down | KeyCode::Char('j') => (sel + 1).min(last),
        KeyCode::Up | KeyCode::Char('k') => sel.saturating_sub(1),
        KeyCode::PageDown => (sel + 10).min(last),
        KeyCode::PageUp => sel.saturating_sub(10),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => return None,
    })
}

#[cfg(test)]
mod list_move_tests {
    use super::*;

    #[test]
    fn moves_within_the_list_and_ignores_other_keys() {
        assert_eq!(list_move(0, 5, KeyCode::Down), Some(1));
        assert_eq!(list_move(4, 5, KeyCode::Char('j')), Some(4));
        assert_eq!(list_move(0, 5, KeyCode::Up), Some(0));
        assert_eq!(list_move(3, 50, KeyCode::PageDown), Some(13));
        assert_eq!(list_move(3, 50, KeyCode::PageUp), Some(0));
        assert_eq!(list_move(7, 50, KeyCode::Char('G')), Some(49));
        assert_eq!(list_move(7, 50, KeyCode::Home), Some(0));
        assert_eq!(list_move(0, 0, KeyCode::Down), Some(0), "an empty list");
        assert_eq!(list_move(2, 5, KeyCode::Enter), None);
    }
}
