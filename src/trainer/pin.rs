//! The diffusion-pipe checkout dpgui is built and tested against.
//!
//! The pin lives in `vendor/diffusion-pipe.pin` (TOML, checked in) and is embedded at build time.
//! The checkout itself lives at `vendor/diffusion-pipe/` (git-ignored). Everything here is pure
//! knowledge: no I/O.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The pin file as checked in, embedded at build time.
pub const PIN_TOML: &str = include_str!("../../vendor/diffusion-pipe.pin");

/// What dpgui expects of the diffusion-pipe checkout and its Python environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// Where to clone from.
    pub repository: String,
    /// The commit dpgui is tested against; may be abbreviated, compared by prefix.
    pub commit: String,
    /// The DeepSpeed version diffusion-pipe's requirements.txt pins (`deepspeed==X`).
    pub deepspeed: String,
    /// Minimum Python version as (major, minor).
    pub python_min: (u32, u32),
    /// Submodule paths relative to the checkout root (`submodules/ComfyUI`, ...).
    pub submodules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    repository: String,
    commit: String,
    deepspeed: String,
    python_min: String,
    submodules: Vec<String>,
}

/// Parses a pin file. Errors are one line of text.
pub fn parse_pin(text: &str) -> Result<Pin, String> {
    let raw: RawPin = toml::from_str(text).map_err(|e| format!("invalid pin file: {e}"))?;
    let python_min = parse_major_minor(&raw.python_min).ok_or_else(|| {
        format!(
            "invalid pin file: python_min must look like \"3.12\", got {:?}",
            raw.python_min
        )
    })?;
    let commit = raw.commit.trim().to_ascii_lowercase();
    if commit.len() < 7 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid pin file: commit must be at least 7 hex digits, got {:?}",
            raw.commit
        ));
    }
    Ok(Pin {
        repository: raw.repository,
        commit,
        deepspeed: raw.deepspeed,
        python_min,
        submodules: raw.submodules,
    })
}

fn parse_major_minor(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The embedded pin, parsed once. The file is checked in and covered by a unit test, so a parse
/// failure is a build defect.
pub fn pin() -> &'static Pin {
    static PIN: OnceLock<Pin> = OnceLock::new();
    PIN.get_or_init(|| parse_pin(PIN_TOML).expect("vendor/diffusion-pipe.pin is invalid"))
}

/// Whether `actual` (usually a full 40-hex HEAD) is the commit `pinned` names. Comparison is by
/// prefix in either direction, case-insensitive, and needs at least 7 hex digits on both sides so
/// that an empty or tiny string never matches.
pub fn commit_matches(pinned: &str, actual: &str) -> bool {
    let p = pinned.trim().to_ascii_lowercase();
    let a = actual.trim().to_ascii_lowercase();
    let hex = |s: &str| s.len() >= 7 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(&p) || !hex(&a) {
        return false;
    }
    a.starts_with(&p) || p.starts_with(&a)
}

/// Whether `actual` is the commit of the embedded pin.
pub fn matches_pinned_commit(actual: &str) -> bool {
    commit_matches(&pin().commit, actual)
}

/// Whether a Python version is new enough for diffusion-pipe.
pub fn python_version_ok(major: u32, minor: u32) -> bool {
    (major, minor) >= pin().python_min
}

/// Why diffusion-pipe needs a recent Python, in one line.
pub fn python_version_reason() -> String {
    let (major, minor) = pin().python_min;
    format!(
        "diffusion-pipe needs Python >= {major}.{minor}: utils/cache.py calls \
         sqlite3.connect(autocommit=...), added in 3.12"
    )
}

/// Whether an installed DeepSpeed version is the pinned one. A PEP 440 local suffix
/// (`0.18.4+cu128`) is ignored.
pub fn deepspeed_matches(installed: &str) -> bool {
    let base = installed.trim().split('+').next().unwrap_or("");
    base == pin().deepspeed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_pin_parses_with_expected_values() {
        let p = pin();
        assert_eq!(p.repository, "https://github.com/tdrussell/diffusion-pipe");
        assert_eq!(p.commit, "8f83dbf");
        assert_eq!(p.deepspeed, "0.18.4");
        assert_eq!(p.python_min, (3, 12));
        assert_eq!(p.submodules.len(), 9);
        assert_eq!(p.submodules[0], "submodules/ComfyUI");
        assert!(
            p.submodules
                .contains(&"submodules/HunyuanImage-2.1".to_string())
        );
        assert!(p.submodules.iter().all(|s| s.starts_with("submodules/")));
    }

    #[test]
    fn parse_pin_rejects_bad_files() {
        let good = "repository = \"r\"\ncommit = \"abcdef0\"\ndeepspeed = \"1\"\n\
                    python_min = \"3.12\"\nsubmodules = []\n";
        assert!(parse_pin(good).is_ok());
        let bad_py = good.replace("3.12", "three");
        assert!(parse_pin(&bad_py).unwrap_err().contains("python_min"));
        let bad_commit = good.replace("abcdef0", "xyz");
        assert!(parse_pin(&bad_commit).unwrap_err().contains("commit"));
        let missing = "repository = \"r\"\n";
        assert!(parse_pin(missing).is_err());
        let extra = format!("{good}surprise = 1\n");
        assert!(parse_pin(&extra).is_err());
    }

    #[test]
    fn commit_prefix_matching() {
        let full = "8f83dbf0123456789abcdef0123456789abcdef0";
        assert!(commit_matches("8f83dbf", full));
        assert!(commit_matches("8F83DBF", full));
        assert!(commit_matches(full, "8f83dbf"));
        assert!(!commit_matches("8f83dbe", full));
        assert!(!commit_matches("8f83dbf", "0f83dbf0123"));
        assert!(!commit_matches("8f83dbf", ""));
        assert!(!commit_matches("", full));
        assert!(!commit_matches("8f8", full));
        assert!(matches_pinned_commit(full));
        assert!(!matches_pinned_commit(
            "1234567890123456789012345678901234567890"
        ));
    }

    #[test]
    fn python_version_gate() {
        assert!(python_version_ok(3, 12));
        assert!(python_version_ok(3, 13));
        assert!(python_version_ok(4, 0));
        assert!(!python_version_ok(3, 11));
        assert!(!python_version_ok(2, 7));
        let r = python_version_reason();
        assert!(r.contains(">= 3.12"), "{r}");
        assert!(r.contains("sqlite3.connect(autocommit=...)"), "{r}");
    }

    #[test]
    fn deepspeed_version_match() {
        assert!(deepspeed_matches("0.18.4"));
        assert!(deepspeed_matches("0.18.4+cu128"));
        assert!(!deepspeed_matches("0.18.40"));
        assert!(!deepspeed_matches("0.17.4"));
        assert!(!deepspeed_matches(""));
    }
}
