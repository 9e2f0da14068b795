//! dpgui's own configuration: `$XDG_CONFIG_HOME/dpgui/config.toml`, environment variables and
//! command-line flags. Precedence: flag > variable > file > default. Every key is optional.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Keys accepted in config.toml, with a one-line meaning (shown for unknown keys and in --help).
pub const KEYS: &[(&str, &str)] = &[
    ("diffusion_pipe", "path to the diffusion-pipe checkout"),
    (
        "python",
        "Python interpreter, or a venv directory, to run diffusion-pipe with",
    ),
    ("refresh_secs", "refresh interval of the dashboard, seconds"),
    ("theme", "theme name: dark, light, basic16 or one of yours"),
    (
        "watched_ports",
        "ports to watch besides 29500, e.g. [29501, 29502]",
    ),
    (
        "stop_grace_secs",
        "seconds between SIGTERM and SIGKILL when ending processes",
    ),
    (
        "probe_timeout_secs",
        "seconds the Python environment probe may take",
    ),
    (
        "port_range",
        "ports a job's master port is chosen from, e.g. [29510, 29999]",
    ),
    (
        "job_interrupt_grace_secs",
        "seconds a stopped job gets after SIGINT before SIGTERM",
    ),
    (
        "job_terminate_grace_secs",
        "seconds a stopped job gets after SIGTERM before SIGKILL",
    ),
    (
        "config_dirs",
        "directories the Config tab lists training configs from, e.g. [\"~/train\"] (default: the current directory and dpgui's config dir)",
    ),
    (
        "image_protocol",
        "how the Datasets tab previews images: auto (from the terminal's environment), kitty, sixel, iterm2, halfblocks",
    ),
    (
        "hub_sources",
        "known-good Hugging Face sources per model type, listed before the built-in ones: [[hub_sources]] model = \"sdxl\", key = \"checkpoint_path\", repo = \"owner/name\", path = \"file.safetensors\", note = \"...\"",
    ),
];

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    diffusion_pipe: Option<PathBuf>,
    python: Option<PathBuf>,
    refresh_secs: Option<f64>,
    theme: Option<String>,
    watched_ports: Option<Vec<u16>>,
    stop_grace_secs: Option<f64>,
    probe_timeout_secs: Option<f64>,
    port_range: Option<[u16; 2]>,
    job_interrupt_grace_secs: Option<f64>,
    job_terminate_grace_secs: Option<f64>,
    config_dirs: Option<Vec<PathBuf>>,
    image_protocol: Option<String>,
    hub_sources: Option<Vec<crate::hub::HubSource>>,
}

/// Values given on the command line (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub diffusion_pipe: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub refresh_secs: Option<f64>,
    pub theme: Option<String>,
    pub watched_ports: Vec<u16>,
    pub stop_grace_secs: Option<f64>,
    pub probe_timeout_secs: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

/// A problem in config.toml, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub config_file: PathBuf,
    pub config_file_exists: bool,
    pub diffusion_pipe: PathBuf,
    pub diffusion_pipe_source: Source,
    pub python: Option<PathBuf>,
    pub python_source: Source,
    pub refresh: Duration,
    pub theme: String,
    /// Always contains 29500 (diffusion-pipe's default port), then the configured ones.
    pub watched_ports: Vec<u16>,
    pub stop_grace: Duration,
    pub probe_timeout: Duration,
    /// Inclusive range a job's master port is chosen from.
    pub port_range: (u16, u16),
    pub job_interrupt_grace: Duration,
    pub job_terminate_grace: Duration,
    /// Where the Config tab lists configs from (absolute; `~` expanded).
    pub config_dirs: Vec<PathBuf>,
    /// auto, kitty, sixel, iterm2 or halfblocks.
    pub image_protocol: String,
    /// Hub download suggestions per model type: the configured ones, then the built-in ones.
    pub hub_sources: Vec<crate::hub::HubSource>,
    pub problems: Vec<ConfigProblem>,
}

/// Above diffusion-pipe's default, so a job never takes the port a hand-started run would use.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (29510, 29999);

pub const DEFAULT_PORT: u16 = 29500;

fn secs(v: f64, min: f64, max: f64) -> Duration {
    Duration::from_secs_f64(if v.is_finite() {
        v.clamp(min, max)
    } else {
        min
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Closest known key, to suggest for a typo.
fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|(k, _)| (*k, strsim(key, k)))
        .filter(|(_, d)| *d <= 3)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

/// Levenshtein distance; configs are tiny so the quadratic version is fine.
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses config.toml text. Bad input yields problems and defaults, never an error.
fn parse_file(text: &str) -> (FileConfig, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    match toml_edit::Document::parse(text) {
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            problems.push(ConfigProblem {
                line,
                message: format!("not valid TOML: {}; using defaults", e.message().trim_end()),
            });
            return (FileConfig::default(), problems);
        }
        Ok(doc) => {
            for (key, _) in doc.iter() {
                if !KEYS.iter().any(|(k, _)| *k == key) {
                    let line = doc
                        .key(key)
                        .and_then(|k| k.span())
                        .map(|s| line_of(text, s.start))
                        .unwrap_or(1);
                    let hint = closest_key(key)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    problems.push(ConfigProblem {
                        line,
                        message: format!("unknown key `{key}`{hint}; ignored"),
                    });
                }
            }
        }
    }
    // Known keys with a wrong type: report the first and keep the rest of the file.
    match toml::from_str::<FileConfig>(text) {
        Ok(cfg) => (cfg, problems),
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            problems.push(ConfigProblem {
                line,
                message: format!("{}; using defaults", e.message().trim_end()),
            });
            (FileConfig::default(), problems)
        }
    }
}

/// Builds the settings from the file, the environment (`env` lookup) and the flags.
pub fn resolve(o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Settings {
    let config_file = o
        .config_file
        .clone()
        .unwrap_or_else(crate::paths::config_file);
    let (file, mut problems, exists) = match std::fs::read(&config_file) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let (f, p) = parse_file(&text);
            (f, p, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (FileConfig::default(), vec![], false)
        }
        Err(e) => (
            FileConfig::default(),
            vec![ConfigProblem {
                line: 0,
                message: format!("cannot read {}: {e}", config_file.display()),
            }],
            true,
        ),
    };
    let env_path = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);

    let (diffusion_pipe, diffusion_pipe_source) = pick(
        o.diffusion_pipe.clone(),
        env_path("DPGUI_DIFFUSION_PIPE"),
        file.diffusion_pipe.map(|p| expand_home(&p)),
    )
    .unwrap_or_else(|| (crate::paths::default_checkout(), Source::Default));
    let (python, python_source) = match pick(
        o.python.clone(),
        env_path("DPGUI_PYTHON"),
        file.python.map(|p| expand_home(&p)),
    ) {
        Some((p, s)) => (Some(p), s),
        None => (None, Source::Default),
    };
    let refresh = secs(
        o.refresh_secs.or(file.refresh_secs).unwrap_or(1.0),
        0.2,
        60.0,
    );
    let theme = o
        .theme
        .clone()
        .or(file.theme)
        .unwrap_or_else(|| "dark".into());
    let mut watched_ports = vec![DEFAULT_PORT];
    for p in file
        .watched_ports
        .unwrap_or_default()
        .into_iter()
        .chain(o.watched_ports.clone())
    {
        if p == 0 {
            problems.push(ConfigProblem {
                line: 0,
                message: "port 0 cannot be watched; ignored".into(),
            });
        } else if !watched_ports.contains(&p) {
            watched_ports.push(p);
        }
    }
    let port_range = match file.port_range {
        None => DEFAULT_PORT_RANGE,
        Some([lo, hi]) if lo >= 1024 && lo <= hi => (lo, hi),
        Some([lo, hi]) => {
            problems.push(ConfigProblem {
                line: 0,
                message: format!(
                    "port_range [{lo}, {hi}] is not a range of ports from 1024 up; using {}-{}",
                    DEFAULT_PORT_RANGE.0, DEFAULT_PORT_RANGE.1
                ),
            });
            DEFAULT_PORT_RANGE
        }
    };
    let config_dirs = config_dirs(file.config_dirs);
    let hub_sources = crate::hub::merge_sources(file.hub_sources.unwrap_or_default());
    let image_protocol = match file.image_protocol.as_deref() {
        None => "auto".to_string(),
        Some(p @ ("auto" | "kitty" | "sixel" | "iterm2" | "halfblocks")) => p.to_string(),
        Some(other) => {
            problems.push(ConfigProblem {
                line: 0,
                message: format!(
                    "image_protocol `{other}` is not one of auto, kitty, sixel, iterm2, halfblocks; using auto"
                ),
            });
            "auto".to_string()
        }
    };
    Settings {
        config_file,
        config_file_exists: exists,
        diffusion_pipe,
        diffusion_pipe_source,
        python,
        python_source,
        refresh,
        theme,
        watched_ports,
        stop_grace: secs(
            o.stop_grace_secs.or(file.stop_grace_secs).unwrap_or(10.0),
            0.0,
            600.0,
        ),
        probe_timeout: secs(
            o.probe_timeout_secs
                .or(file.probe_timeout_secs)
                .unwrap_or(60.0),
            1.0,
            600.0,
        ),
        port_range,
        job_interrupt_grace: secs(file.job_interrupt_grace_secs.unwrap_or(15.0), 0.0, 3600.0),
        job_terminate_grace: secs(
            o.stop_grace_secs
                .or(file.job_terminate_grace_secs)
                .unwrap_or(10.0),
            0.0,
            3600.0,
        ),
        config_dirs,
        image_protocol,
        hub_sources,
        problems,
    }
}

/// The Config tab's workspace: the configured directories (`~` expanded, relative ones taken
/// from the current directory), or by default the current directory and dpgui's config dir.
fn config_dirs(configured: Option<Vec<PathBuf>>) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let dirs = match configured {
        Some(d) if !d.is_empty() => d,
        _ => vec![cwd.clone(), crate::paths::config_dir()],
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let d = expand_home(&d);
        let d = if d.is_absolute() { d } else { cwd.join(d) };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn pick<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Option<(T, Source)> {
    flag.map(|v| (v, Source::Flag))
        .or(env.map(|v| (v, Source::Env)))
        .or(file.map(|v| (v, Source::File)))
}

fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| p.into()),
        Err(_) => p.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, text).unwrap();
        (
            dir,
            Overrides {
                config_file: Some(f),
                ..Default::default()
            },
        )
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let (_d, mut o) = with_file("diffusion_pipe = \"/from/file\"\npython = \"/py/file\"\n");
        let env_both = |k: &str| match k {
            "DPGUI_DIFFUSION_PIPE" => Some("/from/env".to_string()),
            "DPGUI_PYTHON" => Some("/py/env".to_string()),
            _ => None,
        };
        let no_env = |_: &str| None;
        let s = resolve(&o, &no_env);
        assert_eq!(s.diffusion_pipe, PathBuf::from("/from/file"));
        assert_eq!(s.diffusion_pipe_source, Source::File);
        let s = resolve(&o, &env_both);
        assert_eq!(s.diffusion_pipe, PathBuf::from("/from/env"));
        assert_eq!(s.python, Some(PathBuf::from("/py/env")));
        assert_eq!(s.python_source, Source::Env);
        o.diffusion_pipe = Some("/from/flag".into());
        let s = resolve(&o, &env_both);
        assert_eq!(s.diffusion_pipe, PathBuf::from("/from/flag"));
        assert_eq!(s.diffusion_pipe_source, Source::Flag);
        assert_eq!(s.python_source, Source::Env);

        o.config_file = Some("/nonexistent/dpgui.toml".into());
        o.diffusion_pipe = None;
        let s = resolve(&o, &no_env);
        assert_eq!(s.diffusion_pipe_source, Source::Default);
        assert!(!s.config_file_exists);
        assert!(s.problems.is_empty());
        assert_eq!(s.watched_ports, vec![29500]);
        assert_eq!(s.refresh, Duration::from_secs(1));
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let (_d, o) =
            with_file("theme = \"light\"\n\nrefresh_sec = 2\nwatched_ports = [29501, 29500]\n");
        let s = resolve(&o, &|_| None);
        assert_eq!(s.theme, "light");
        assert_eq!(s.watched_ports, vec![29500, 29501]);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].line, 3);
        assert!(s.problems[0].message.contains("`refresh_sec`"));
        assert!(
            s.problems[0]
                .message
                .contains("did you mean `refresh_secs`")
        );
    }

    #[test]
    fn malformed_toml_and_wrong_types_fall_back_to_defaults() {
        let (_d, o) = with_file("theme = \"dark\"\nrefresh_secs = = 2\n");
        let s = resolve(&o, &|_| None);
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.problems[0].line, 2);
        assert!(s.problems[0].message.starts_with("not valid TOML"));

        let (_d, o) = with_file("\nwatched_ports = \"29501\"\n");
        let s = resolve(&o, &|_| None);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].line, 2);
        assert_eq!(s.watched_ports, vec![29500]);

        // Binary garbage is a problem report, not a crash.
        let (_d, o) = with_file("\u{0}\u{1}\u{fffd}theme");
        let s = resolve(&o, &|_| None);
        assert!(!s.problems.is_empty());
    }

    #[test]
    fn flags_override_numbers_and_are_clamped() {
        let (_d, mut o) = with_file("refresh_secs = 5\nstop_grace_secs = 3\n");
        o.refresh_secs = Some(0.0);
        o.watched_ports = vec![29600, 0];
        let s = resolve(&o, &|_| None);
        assert_eq!(s.refresh, Duration::from_millis(200));
        assert_eq!(s.stop_grace, Duration::from_secs(3));
        assert_eq!(s.port_range, DEFAULT_PORT_RANGE);
        assert_eq!(s.watched_ports, vec![29500, 29600]);
        assert_eq!(s.problems.len(), 1);
    }

    #[test]
    fn port_range_and_job_graces_are_read_and_checked() {
        let (_d, o) = with_file(
            "port_range = [30000, 30010]\njob_interrupt_grace_secs = 2\njob_terminate_grace_secs = 4\n",
        );
        let s = resolve(&o, &|_| None);
        assert_eq!(s.port_range, (30000, 30010));
        assert_eq!(s.job_interrupt_grace, Duration::from_secs(2));
        assert_eq!(s.job_terminate_grace, Duration::from_secs(4));
        let (_d, o) = with_file("port_range = [30010, 30000]\n");
        let s = resolve(&o, &|_| None);
        assert_eq!(s.port_range, DEFAULT_PORT_RANGE);
        assert!(s.problems[0].message.contains("port_range"));
    }

    #[test]
    fn config_dirs_default_to_the_current_and_config_dir_and_expand_home() {
        let (_d, o) = with_file("theme = \"dark\"\n");
        let s = resolve(&o, &|_| None);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(s.config_dirs, vec![cwd.clone(), crate::paths::config_dir()]);
        let (_d, o) = with_file("config_dirs = [\"~/train\", \"rel\", \"/abs\", \"/abs\"]\n");
        let s = resolve(&o, &|_| None);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let home = dirs::home_dir().unwrap();
        assert_eq!(
            s.config_dirs,
            vec![home.join("train"), cwd.join("rel"), PathBuf::from("/abs")]
        );
    }
}
