//! Path values: where diffusion-pipe looks for them, whether they exist and are what is needed,
//! and the Hugging Face repo id mistaken for a local path.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::model::Expect;
use super::text::Ctx;
use super::{Fs, PathKind, codes};

/// diffusion-pipe opens paths as given, relative ones against its working directory (the
/// checkout root). It expands neither `~` nor variables.
pub fn resolve(base: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

const FILE_EXTENSIONS: &[&str] = &[
    "safetensors",
    "sft",
    "ckpt",
    "pt",
    "pth",
    "bin",
    "gguf",
    "onnx",
    "json",
    "toml",
    "yaml",
    "yml",
    "txt",
];

/// `owner/name` with exactly one slash, nothing that makes it look like a path (a leading `/`,
/// `.` or `~`, a weights file extension). The caller also checks it does not exist.
pub fn looks_like_hub_id(value: &str) -> bool {
    let Some((owner, name)) = value.split_once('/') else {
        return false;
    };
    let ok_part = |s: &str| {
        !s.is_empty()
            && s.len() <= 96
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ok_part(owner) || !ok_part(name) || owner.starts_with(['.', '-']) {
        return false;
    }
    if let Some((_, ext)) = name.rsplit_once('.')
        && FILE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    {
        return false;
    }
    true
}

/// What one path check needs to know besides the value.
pub(crate) struct PathRule<'k> {
    /// As shown to the user, e.g. "[model] transformer_path".
    pub(crate) label: &'k str,
    /// The bare key, for fixes.
    pub(crate) key: &'k str,
    pub(crate) expect: Expect,
    /// Missing is fine (e.g. output_dir, created by diffusion-pipe).
    pub(crate) may_be_missing: bool,
    /// Report `owner/name` values as Hugging Face repo ids ([model] path keys only).
    pub(crate) hub_check: bool,
    pub(crate) note: &'k str,
}

fn relative_note(value: &str, base: &Path) -> String {
    if Path::new(value).is_absolute() {
        String::new()
    } else {
        format!(
            "; relative paths are resolved against the diffusion-pipe checkout {} (its working \
             directory), not against this file",
            base.display()
        )
    }
}

/// Checks one path value; returns what it is on disk (Missing also for values not checked).
pub(crate) fn check_path(
    ctx: &mut Ctx<'_>,
    base: &Path,
    fs: &dyn Fs,
    value: &str,
    span: Option<Range<usize>>,
    rule: &PathRule<'_>,
) -> PathKind {
    let label = rule.label;
    let key = rule.key;
    let what = rule.expect.describe();
    let note = if rule.note.is_empty() {
        String::new()
    } else {
        format!(": {}", rule.note)
    };
    if value.trim().is_empty() {
        ctx.error(
            span,
            codes::PATH_MISSING,
            format!("`{label}` is empty (expected {what}{note})"),
            format!("set `{key}` to the path of {what}"),
        );
        return PathKind::Missing;
    }
    let full = resolve(base, value);
    let kind = fs.kind(&full);
    if kind == PathKind::Missing {
        if rule.may_be_missing {
            return kind;
        }
        if rule.hub_check && looks_like_hub_id(value) {
            let target = match rule.expect {
                Expect::File => "the local path of the file",
                Expect::Dir => "the local path of the downloaded folder",
                Expect::FileOrDir => "the local path",
            };
            ctx.error(
                span,
                codes::HUB_REPO_ID,
                format!(
                    "`{label}` = '{value}' looks like a Hugging Face repo id; diffusion-pipe needs \
                     a local path here ({what}{note}) and downloads nothing"
                ),
                format!(
                    "download it (dpgui fetch {value}, or huggingface-cli download {value}) and \
                     put {target} here"
                ),
            );
            return kind;
        }
        let tilde = value.starts_with('~');
        let fix = if tilde {
            format!(
                "diffusion-pipe does not expand `~`: write `{key}` as an absolute path \
                 (/home/<you>/...)"
            )
        } else if Path::new(value).is_absolute() {
            format!("point `{key}` at an existing {}", short(rule.expect))
        } else {
            format!(
                "use an absolute path, or one relative to the diffusion-pipe checkout {}",
                base.display()
            )
        };
        ctx.error(
            span,
            codes::PATH_MISSING,
            format!(
                "`{label}`: {} does not exist (expected {what}{note}){}",
                full.display(),
                relative_note(value, base)
            ),
            fix,
        );
        return kind;
    }
    let wrong = match (rule.expect, kind) {
        (Expect::File, PathKind::Dir) => Some("a directory"),
        (Expect::Dir, PathKind::File) => Some("a file"),
        _ => None,
    };
    if let Some(found) = wrong {
        let fix = match rule.expect {
            Expect::File => format!(
                "point `{key}` at the file itself (e.g. the .safetensors inside {})",
                full.display()
            ),
            _ => format!("point `{key}` at the folder, not a file in it"),
        };
        ctx.error(
            span,
            codes::PATH_KIND,
            format!(
                "`{label}`: {} is {found}, but diffusion-pipe needs {what} here{note}",
                full.display()
            ),
            fix,
        );
    }
    kind
}

fn short(e: Expect) -> &'static str {
    match e {
        Expect::File => "file",
        Expect::Dir => "directory",
        Expect::FileOrDir => "file or directory",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_are_recognised() {
        for yes in [
            "stabilityai/stable-diffusion-xl-base-1.0",
            "Wan-AI/Wan2.1-T2V-1.3B",
            "black-forest-labs/FLUX.1-dev",
            "stabilityai/stable-diffusion-3.5-medium",
        ] {
            assert!(looks_like_hub_id(yes), "{yes}");
        }
        for no in [
            "/data/models/x",
            "./models/x",
            "../x/y",
            "~/x",
            "models/sdxl.safetensors",
            "a/b/c",
            "plain",
            "owner/",
            "/abs",
            "with space/x",
            "models/model.pt",
        ] {
            assert!(!looks_like_hub_id(no), "{no}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_base() {
        assert_eq!(
            resolve(Path::new("/dp"), "examples/d.toml"),
            PathBuf::from("/dp/examples/d.toml")
        );
        assert_eq!(resolve(Path::new("/dp"), "/abs/x"), PathBuf::from("/abs/x"));
    }
}
