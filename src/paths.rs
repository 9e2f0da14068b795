//! Where dpgui keeps its files (XDG base directories).

use std::path::PathBuf;

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) if PathBuf::from(&v).is_absolute() => PathBuf::from(v),
        _ => dirs::home_dir()
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(fallback),
    }
}

/// `$XDG_CONFIG_HOME/dpgui` (config.toml, themes/).
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("dpgui")
}

/// `$XDG_STATE_HOME/dpgui` (logs, jobs).
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("dpgui")
}

/// `$XDG_CACHE_HOME/dpgui` (dataset scan results: safe to delete, rebuilt on the next scan).
pub fn cache_dir() -> PathBuf {
    xdg("XDG_CACHE_HOME", ".cache").join("dpgui")
}

pub fn config_file() -> PathBuf {
    config_dir().join("config.toml")
}

pub fn user_themes_dir() -> PathBuf {
    config_dir().join("themes")
}

pub fn log_dir() -> PathBuf {
    state_dir().join("logs")
}

/// The default diffusion-pipe checkout: `vendor/diffusion-pipe` in the current directory if it
/// exists there, else beside the dpgui sources this binary was built from.
pub fn default_checkout() -> PathBuf {
    let here = PathBuf::from("vendor/diffusion-pipe");
    if here.join("train.py").exists()
        && let Ok(abs) = std::fs::canonicalize(&here)
    {
        return abs;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vendor/diffusion-pipe")
}
