//! Themes: TOML files in `themes/`, embedded at build time; files in the user's theme dir
//! (`~/.config/dpgui/themes/NAME.toml`) override or add. Unset colours fall back to the dark theme.

use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The built-in themes, embedded so the binary works from anywhere.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("basic16", include_str!("../../themes/basic16.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub fg: Color,
    pub bg: Color,
    pub muted: Color,
    pub accent: Color,
    pub title: Color,
    pub border: Color,
    pub border_focus: Color,
    pub tab_active_fg: Color,
    pub tab_active_bg: Color,
    pub selection_fg: Color,
    pub selection_bg: Color,
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
    pub info: Color,
    pub gauge_low: Color,
    pub gauge_mid: Color,
    pub gauge_high: Color,
    pub status_fg: Color,
    pub status_bg: Color,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    colors: std::collections::HashMap<String, String>,
}

impl Theme {
    pub fn base(&self) -> Style {
        Style::default().fg(self.fg).bg(self.bg)
    }
    pub fn muted(&self) -> Style {
        Style::default().fg(self.muted)
    }
    pub fn title(&self) -> Style {
        Style::default().fg(self.title).add_modifier(Modifier::BOLD)
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            Style::default()
                .fg(self.border_focus)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(self.border)
        }
    }
    /// Selected rows are also reversed when colours are off, so selection never depends on colour.
    pub fn selected(&self) -> Style {
        if self.selection_bg == Color::Reset {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default()
                .fg(self.selection_fg)
                .bg(self.selection_bg)
                .add_modifier(Modifier::BOLD)
        }
    }
    pub fn tab_active(&self) -> Style {
        if self.tab_active_bg == Color::Reset {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default()
                .fg(self.tab_active_fg)
                .bg(self.tab_active_bg)
                .add_modifier(Modifier::BOLD)
        }
    }
    pub fn status(&self) -> Style {
        Style::default().fg(self.status_fg).bg(self.status_bg)
    }
    pub fn ok(&self) -> Style {
        Style::default().fg(self.ok)
    }
    pub fn warn(&self) -> Style {
        Style::default().fg(self.warn).add_modifier(Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        Style::default().fg(self.error).add_modifier(Modifier::BOLD)
    }
    pub fn info(&self) -> Style {
        Style::default().fg(self.info)
    }
    pub fn accent(&self) -> Style {
        Style::default().fg(self.accent)
    }
    /// Colour for a 0-100 load figure.
    pub fn gauge(&self, pct: f64) -> Color {
        if pct >= 90.0 {
            self.gauge_high
        } else if pct >= 60.0 {
            self.gauge_mid
        } else {
            self.gauge_low
        }
    }

    /// Every colour replaced by the terminal default (NO_COLOR); modifiers still mark state.
    pub fn without_colors(mut self) -> Self {
        for c in self.colors_mut() {
            *c = Color::Reset;
        }
        self
    }

    fn colors_mut(&mut self) -> [&mut Color; 20] {
        [
            &mut self.fg,
            &mut self.bg,
            &mut self.muted,
            &mut self.accent,
            &mut self.title,
            &mut self.border,
            &mut self.border_focus,
            &mut self.tab_active_fg,
            &mut self.tab_active_bg,
            &mut self.selection_fg,
            &mut self.selection_bg,
            &mut self.ok,
            &mut self.warn,
            &mut self.error,
            &mut self.info,
            &mut self.gauge_low,
            &mut self.gauge_mid,
            &mut self.gauge_high,
            &mut self.status_fg,
            &mut self.status_bg,
        ]
    }

    fn set(&mut self, key: &str, c: Color) -> bool {
        let slot = match key {
            "fg" => &mut self.fg,
            "bg" => &mut self.bg,
            "muted" => &mut self.muted,
            "accent" => &mut self.accent,
            "title" => &mut self.title,
            "border" => &mut self.border,
            "border_focus" => &mut self.border_focus,
            "tab_active_fg" => &mut self.tab_active_fg,
            "tab_active_bg" => &mut self.tab_active_bg,
            "selection_fg" => &mut self.selection_fg,
            "selection_bg" => &mut self.selection_bg,
            "ok" => &mut self.ok,
            "warn" => &mut self.warn,
            "error" => &mut self.error,
            "info" => &mut self.info,
            "gauge_low" => &mut self.gauge_low,
            "gauge_mid" => &mut self.gauge_mid,
            "gauge_high" => &mut self.gauge_high,
            "status_fg" => &mut self.status_fg,
            "status_bg" => &mut self.status_bg,
            _ => return false,
        };
        *slot = c;
        true
    }

    /// Parses theme TOML over `base`.
    pub fn parse(text: &str, base: Theme) -> Result<Theme, String> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut t = base;
        for (k, v) in &file.colors {
            let c = Color::from_str(v).map_err(|_| {
                format!("colour `{v}` for `{k}` is not a name, #rrggbb, 0-255 or reset")
            })?;
            if !t.set(k, c) {
                return Err(format!("unknown colour key `{k}`"));
            }
        }
        Ok(t)
    }

    pub fn builtin(name: &str) -> Option<Theme> {
        let text = BUILTIN.iter().find(|(n, _)| *n == name)?.1;
        Some(Theme::parse(text, FALLBACK).expect("built-in themes parse"))
    }
}

/// Used only as the base that theme files are laid over.
const FALLBACK: Theme = Theme {
    fg: Color::Reset,
    bg: Color::Reset,
    muted: Color::DarkGray,
    accent: Color::Cyan,
    title: Color::Yellow,
    border: Color::DarkGray,
    border_focus: Color::Cyan,
    tab_active_fg: Color::Black,
    tab_active_bg: Color::Cyan,
    selection_fg: Color::Black,
    selection_bg: Color::Cyan,
    ok: Color::Green,
    warn: Color::Yellow,
    error: Color::Red,
    info: Color::Blue,
    gauge_low: Color::Green,
    gauge_mid: Color::Yellow,
    gauge_high: Color::Red,
    status_fg: Color::Reset,
    status_bg: Color::Reset,
};

/// Theme names available: built-ins plus `*.toml` in the user dir.
pub fn available(user_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    if let Ok(rd) = std::fs::read_dir(user_dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml")
                && let Some(stem) = p.file_stem()
            {
                let s = stem.to_string_lossy().into_owned();
                if !names.contains(&s) {
                    names.push(s);
                }
            }
        }
    }
    names
}

/// Loads a theme by name: the user dir first (so users can override built-ins), then built-ins.
/// With `no_color`, the 16-colour theme is used with colours dropped.
pub fn load(name: &str, user_dir: &Path, no_color: bool) -> Result<Theme, String> {
    if no_color {
        return Ok(Theme::builtin("basic16")
            .expect("basic16 exists")
            .without_colors());
    }
    let user_file = user_dir.join(format!("{name}.toml"));
    if let Ok(text) = std::fs::read_to_string(&user_file) {
        let base = Theme::builtin(name).unwrap_or_else(|| Theme::builtin("dark").unwrap());
        return Theme::parse(&text, base).map_err(|e| format!("{}: {e}", user_file.display()));
    }
    Theme::builtin(name).ok_or_else(|| {
        format!(
            "no theme `{name}` (available: {})",
            available(user_dir).join(", ")
        )
    })
}

/// NO_COLOR is honoured when set to any non-empty value (no-color.org).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_differ() {
        let dark = Theme::builtin("dark").unwrap();
        let light = Theme::builtin("light").unwrap();
        let basic = Theme::builtin("basic16").unwrap();
        assert_ne!(dark, light);
        assert_eq!(basic.error, Color::Red);
        assert_eq!(dark.error, Color::Rgb(0xe0, 0x6c, 0x75));
    }

    #[test]
    fn user_theme_overrides_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dark.toml"),
            "[colors]\nerror = \"#010203\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("mine.toml"), "[colors]\nok = \"nope\"\n").unwrap();
        let t = load("dark", dir.path(), false).unwrap();
        assert_eq!(t.error, Color::Rgb(1, 2, 3));
        // Keys the user did not set keep the built-in value.
        assert_eq!(t.ok, Theme::builtin("dark").unwrap().ok);
        let err = load("mine", dir.path(), false).unwrap_err();
        assert!(err.contains("`nope`"), "{err}");
        let err = load("missing", dir.path(), false).unwrap_err();
        assert!(err.contains("available: dark, light, basic16"), "{err}");
        assert!(available(dir.path()).contains(&"mine".to_string()));
    }

    #[test]
    fn no_color_drops_every_colour_but_keeps_selection_visible() {
        let t = load("dark", Path::new("/nonexistent"), true).unwrap();
        assert_eq!(t.error, Color::Reset);
        assert!(t.selected().add_modifier.contains(Modifier::REVERSED));
    }
}
