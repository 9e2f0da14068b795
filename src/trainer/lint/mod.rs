//! The config linter: diffusion-pipe's rules for the main config and its dataset configs,
//! checked while typing, long before a model load would find them. Pure: the filesystem is
//! reached only through the `Fs` trait (the real one, or a map in tests).

mod dataset;
mod keys;
mod main_config;
mod model;
mod paths;
#[cfg(test)]
mod tests;
mod text;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dataset::{
    AspectRatio, DatasetConfig, DatasetSettings, DirectoryConfig, EffectiveDirectory, Located,
    ParseError, Resolution, parse_dataset,
};
pub use keys::{BUILTIN_OPTIMIZERS, DATASET_SETTINGS, MAIN_KEYS};
pub use main_config::{Batch, BatchSettings, batch_settings};
pub use model::{DTYPES, Expect, PathKey, TEXT_ENCODERS, alternatives, model_types, path_key};
pub use paths::{looks_like_hub_id, resolve};

use text::Ctx;

/// The stable codes of every finding.
pub mod codes {
    /// The file is not valid TOML (the position is exact).
    pub const TOML_SYNTAX: &str = "toml-syntax";
    /// A referenced config exists but cannot be read as text.
    pub const FILE_UNREADABLE: &str = "file-unreadable";
    /// A required key or table is absent.
    pub const MISSING_KEY: &str = "missing-key";
    /// A value of the wrong TOML type.
    pub const WRONG_TYPE: &str = "wrong-type";
    /// A value out of range or not among the accepted ones.
    pub const INVALID_VALUE: &str = "invalid-value";
    /// A key diffusion-pipe does not read (warning; information for unknown `[model]` options).
    pub const UNKNOWN_KEY: &str = "unknown-key";
    pub const UNKNOWN_MODEL_TYPE: &str = "unknown-model-type";
    pub const INVALID_DTYPE: &str = "invalid-dtype";
    /// A path that does not exist.
    pub const PATH_MISSING: &str = "path-missing";
    /// A file where a directory is needed, or the reverse.
    pub const PATH_KIND: &str = "path-kind";
    /// `owner/name` where a local path is needed.
    pub const HUB_REPO_ID: &str = "hub-repo-id";
    pub const ADAPTER_TYPE: &str = "adapter-type";
    pub const ADAPTER_ALPHA: &str = "adapter-alpha";
    pub const INIT_FROM_EXISTING: &str = "init-from-existing";
    pub const BLOCK_SWAP: &str = "block-swap";
    pub const EVAL_DATASET_ENTRY: &str = "eval-dataset-entry";
    pub const CHECKPOINT_CONFLICT: &str = "checkpoint-conflict";
    pub const NO_CHECKPOINT: &str = "no-checkpoint";
    pub const OPTIMIZER_TYPE: &str = "optimizer-type";
    /// Information computed from the config (batch sizes, data-parallel degree).
    pub const DERIVED: &str = "derived";
    pub const TOO_MANY_RESOLUTIONS: &str = "too-many-resolutions";
    pub const AR_BUCKETS: &str = "ar-buckets";
    pub const FRAME_BUCKETS: &str = "frame-buckets";
    pub const SIZE_BUCKETS: &str = "size-buckets";
    pub const MIXED_ARRAY: &str = "mixed-array";

    /// Every code, for documentation and tests.
    pub const ALL: &[&str] = &[
        TOML_SYNTAX,
        FILE_UNREADABLE,
        MISSING_KEY,
        WRONG_TYPE,
        INVALID_VALUE,
        UNKNOWN_KEY,
        UNKNOWN_MODEL_TYPE,
        INVALID_DTYPE,
        PATH_MISSING,
        PATH_KIND,
        HUB_REPO_ID,
        ADAPTER_TYPE,
        ADAPTER_ALPHA,
        INIT_FROM_EXISTING,
        BLOCK_SWAP,
        EVAL_DATASET_ENTRY,
        CHECKPOINT_CONFLICT,
        NO_CHECKPOINT,
        OPTIMIZER_TYPE,
        DERIVED,
        TOO_MANY_RESOLUTIONS,
        AR_BUCKETS,
        FRAME_BUCKETS,
        SIZE_BUCKETS,
        MIXED_ARRAY,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One finding, at a place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the finding has no place (e.g. a missing key: then line 1).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub severity: Severity,
    /// Stable, e.g. `missing-key`, `path-missing`, `hub-repo-id`.
    pub code: &'static str,
    pub message: String,
    pub fix: Option<String>,
}

/// What a path is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File,
    Dir,
}

/// The linter's only window on the machine.
pub trait Fs {
    fn kind(&self, p: &Path) -> PathKind;
    fn read_to_string(&self, p: &Path) -> std::io::Result<String>;
    /// Entries of a directory (names only), for checks like "exactly one .safetensors".
    fn list(&self, p: &Path) -> std::io::Result<Vec<String>>;
}

/// Larger than any real config by far; protects the dashboard from a wrong path.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The real filesystem.
pub struct RealFs;

impl Fs for RealFs {
    fn kind(&self, p: &Path) -> PathKind {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => PathKind::Dir,
            Ok(_) => PathKind::File,
            Err(_) => PathKind::Missing,
        }
    }
    fn read_to_string(&self, p: &Path) -> std::io::Result<String> {
        // A config is a small regular file: a FIFO would block the dashboard, a device or a
        // multi-GB file would exhaust memory (the linter runs while the user types).
        use std::io::Read;
        let meta = std::fs::metadata(p)?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(std::io::Error::other(format!(
                "{} bytes: too big for a config (at most {MAX_CONFIG_BYTES})",
                meta.len()
            )));
        }
        let mut text = String::new();
        std::fs::File::open(p)?
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)?;
        if text.contains('\0') {
            return Err(std::io::Error::other("binary content (NUL bytes)"));
        }
        Ok(text)
    }
    fn list(&self, p: &Path) -> std::io::Result<Vec<String>> {
        Ok(std::fs::read_dir(p)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

/// The findings for a main config and the dataset configs it references.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LintReport {
    /// All files, sorted by (file, line, column).
    pub diagnostics: Vec<Diagnostic>,
    /// The resolved `dataset =` path (whether or not it exists).
    pub dataset_path: Option<PathBuf>,
    pub eval_dataset_paths: Vec<PathBuf>,
    /// Derived values (batch sizes, data-parallel degree), also emitted as Info diagnostics.
    pub derived: Vec<String>,
}

impl LintReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// (errors, warnings, infos)
    pub fn counts(&self) -> (usize, usize, usize) {
        counts(&self.diagnostics)
    }
}

/// (errors, warnings, infos) of a list of findings.
pub fn counts(diagnostics: &[Diagnostic]) -> (usize, usize, usize) {
    let n = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Info))
}

fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
}

/// Lints a main config given as text (the editor's buffer), reading referenced dataset configs
/// through `fs` (unless `dataset_text` overrides the dataset config's content: the editor's
/// second, possibly unsaved buffer).
///
/// `base` = the directory relative paths are resolved against: diffusion-pipe resolves them
/// against its working directory, the checkout root (pass the configured checkout).
pub fn lint_main(
    path: &Path,
    text: &str,
    base: &Path,
    fs: &dyn Fs,
    dataset_text: Option<&str>,
) -> LintReport {
    let mut ctx = Ctx::new(path, text);
    let mut report = LintReport::default();
    // (path, value span in the main config, whether it is known to exist as a file)
    let mut referenced: Vec<(PathBuf, Option<std::ops::Range<usize>>, bool, bool)> = Vec::new();
    match ctx.parse() {
        Some(doc) => {
            text::check_arrays(&mut ctx, doc.as_item());
            let out = main_config::check(&mut ctx, doc.as_table(), base, fs);
            if let Some((p, kind, span)) = out.dataset {
                report.dataset_path = Some(p.clone());
                referenced.push((p, span, kind == PathKind::File, true));
            }
            for (p, kind, span) in out.eval {
                report.eval_dataset_paths.push(p.clone());
                referenced.push((p, span, kind == PathKind::File, false));
            }
            report.derived = out.derived;
        }
        None => {
            // Keep "jump to the dataset config" working while the buffer does not parse.
            if let Some(v) = dataset_value_by_scan(text) {
                let p = resolve(base, &v);
                report.dataset_path = Some(p.clone());
                let is_file = fs.kind(&p) == PathKind::File;
                referenced.push((p, None, is_file, true));
            }
        }
    }
    let mut diagnostics = std::mem::take(&mut ctx.out);
    let mut seen: Vec<&Path> = Vec::new();
    for (p, span, is_file, is_train) in &referenced {
        if seen.contains(&p.as_path()) {
            continue;
        }
        seen.push(p);
        let content: Cow<'_, str> = match (is_train, dataset_text) {
            (true, Some(t)) => Cow::Borrowed(t),
            _ if !is_file => continue,
            _ => match fs.read_to_string(p) {
                Ok(t) => Cow::Owned(t),
                Err(e) => {
                    ctx.error(
                        span.clone(),
                        codes::FILE_UNREADABLE,
                        format!("{} cannot be read as text: {e}", p.display()),
                        "make it a readable UTF-8 TOML file".to_string(),
                    );
                    diagnostics.append(&mut ctx.out);
                    continue;
                }
            },
        };
        diagnostics.extend(lint_dataset(p, &content, base, fs));
    }
    sort(&mut diagnostics);
    report.diagnostics = diagnostics;
    report
}

/// `dataset = '...'` at the top level, found without parsing (for a buffer with a syntax error).
fn dataset_value_by_scan(text: &str) -> Option<String> {
    for line in text.lines() {
        let l = line.trim_start();
        if l.starts_with('[') {
            return None;
        }
        let Some(rest) = l.strip_prefix("dataset") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &rest[1..];
        return inner.find(quote).map(|end| inner[..end].to_string());
    }
    None
}

/// Lints a dataset config on its own (opened directly).
pub fn lint_dataset(path: &Path, text: &str, base: &Path, fs: &dyn Fs) -> Vec<Diagnostic> {
    let mut ctx = Ctx::new(path, text);
    dataset::check(&mut ctx, base, fs);
    let mut out = ctx.out;
    sort(&mut out);
    out
}

/// What a config file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigKind {
    Main,
    Dataset,
    Unknown,
}

/// Is this file a main config or a dataset config? Looks at keys and table headers only, so it
/// works on text that does not parse.
pub fn config_kind(text: &str) -> ConfigKind {
    let (mut main, mut data) = (0, 0);
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(h) = l.strip_prefix("[[") {
            let name = h.split(']').next().unwrap_or("").trim();
            match name {
                "directory" => data += 3,
                "eval_datasets" | "model.text_encoders" => main += 1,
                _ => {}
            }
            continue;
        }
        if let Some(h) = l.strip_prefix('[') {
            let name = h.split(']').next().unwrap_or("").trim();
            if matches!(name, "model" | "adapter" | "optimizer" | "monitoring") {
                main += 3;
            }
            continue;
        }
        let key = l
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if matches!(key, "output_dir" | "epochs") || key.starts_with("save_every_n_") {
            main += 2;
        } else if key == "dataset" || key.starts_with("model.") {
            main += 1;
        } else if matches!(
            key,
            "resolutions" | "size_buckets" | "enable_ar_bucket" | "frame_buckets" | "directory"
        ) {
            data += 2;
        } else if dataset::is_dataset_key(key) {
            data += 1;
        }
    }
    match main.cmp(&data) {
        std::cmp::Ordering::Greater => ConfigKind::Main,
        std::cmp::Ordering::Less => ConfigKind::Dataset,
        std::cmp::Ordering::Equal => ConfigKind::Unknown,
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn the_real_fs_refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Would block for ever if it were opened.
        assert!(RealFs.read_to_string(&fifo).is_err());
        assert!(RealFs.read_to_string(Path::new("/dev/zero")).is_err());
        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, b"a = 1\n\0").unwrap();
        assert!(RealFs.read_to_string(&bin).is_err());
        let big = dir.path().join("big.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CONFIG_BYTES + 1)
            .unwrap();
        assert!(RealFs.read_to_string(&big).is_err());
    }

    #[test]
    fn absurd_numbers_do_not_overflow() {
        let text = "output_dir = '/o'\ndataset = '/d.toml'\nepochs = 1\nsave_every_n_epochs = 1\n\
                    pipeline_stages = 9223372036854775807\nmicro_batch_size_per_gpu = 9223372036854775807\n\
                    gradient_accumulation_steps = 9223372036854775807\n[model]\ntype = 'sdxl'\n\
                    dtype = 'bfloat16'\ncheckpoint_path = '/m.safetensors'\n[optimizer]\ntype = 'adamw'\n";
        let r = lint_main(Path::new("/c.toml"), text, Path::new("/"), &RealFs, None);
        assert!(!r.diagnostics.is_empty());
    }
}
