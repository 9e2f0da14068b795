//! Where the hub is, who we are to it and where files go, resolved from the environment the way
//! Python's huggingface_hub does, so both share one cache and one login.

use std::path::{Path, PathBuf};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_REVISION: &str = "main";

/// A hub token. Its Debug and Display print `<redacted>`: it can sit in any struct that gets
/// logged or printed without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// None for an empty or blank value.
    pub fn new(s: &str) -> Option<Token> {
        let t = s.trim();
        (!t.is_empty()).then(|| Token(t.to_string()))
    }

    /// The secret itself, for the Authorization header only.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the token came from (shown instead of the token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN).
    Env,
    /// The token file: HF_TOKEN_PATH, else `$HF_HOME/token`.
    File(PathBuf),
    Given,
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Without a trailing slash.
    pub endpoint: String,
    /// The hub cache (`models--owner--name/{blobs,refs,snapshots}` inside).
    pub cache_dir: PathBuf,
    pub token: Option<Token>,
    pub token_source: Option<TokenSource>,
    /// Use only the cache; never touch the network.
    pub offline: bool,
    /// Times a broken transfer is resumed on its own before the download fails (resumably).
    pub max_resumes: u32,
}

/// huggingface_hub's truth values for its boolean variables.
fn is_true(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

fn expand_home(p: &str) -> PathBuf {
    match p
        .strip_prefix("~/")
        .or(if p == "~" { Some("") } else { None })
    {
        Some(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    }
}

fn non_empty(env: &dyn Fn(&str) -> Option<String>, k: &str) -> Option<String> {
    env(k).filter(|v| !v.trim().is_empty())
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(h) = non_empty(env, "HF_HOME") {
        return expand_home(&h);
    }
    let base = non_empty(env, "XDG_CACHE_HOME")
        .map(|x| expand_home(&x))
        .unwrap_or_else(|| expand_home("~/.cache"));
    base.join("huggingface")
}

/// `HF_HUB_CACHE`, else the older `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`.
pub fn hub_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    non_empty(env, "HF_HUB_CACHE")
        .or_else(|| non_empty(env, "HUGGINGFACE_HUB_CACHE"))
        .map(|c| expand_home(&c))
        .unwrap_or_else(|| hf_home(env).join("hub"))
}

/// HF_TOKEN, then the token file (HF_TOKEN_PATH, else `$HF_HOME/token`, where `hf auth login`
/// writes it); nothing when HF_HUB_DISABLE_IMPLICIT_TOKEN is set.
pub fn resolve_token(env: &dyn Fn(&str) -> Option<String>) -> Option<(Token, TokenSource)> {
    if is_true(env("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
        return None;
    }
    for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Some(t) = env(k).as_deref().and_then(Token::new) {
            return Some((t, TokenSource::Env));
        }
    }
    let file = non_empty(env, "HF_TOKEN_PATH")
        .map(|p| expand_home(&p))
        .unwrap_or_else(|| hf_home(env).join("token"));
    let text = read_small(&file)?;
    Token::new(&text).map(|t| (t, TokenSource::File(file)))
}

/// A token file is a line of text; anything large or binary is not one.
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(4096).read_to_end(&mut buf).ok()?;
    let s = String::from_utf8(buf).ok()?;
    (!s.contains('\0')).then_some(s)
}

impl HubConfig {
    /// From the hub's own variables (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN,
    /// HF_TOKEN_PATH, HF_HUB_OFFLINE), looked up through `env`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> HubConfig {
        let endpoint = non_empty(env, "HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let (token, token_source) = match resolve_token(env) {
            Some((t, s)) => (Some(t), Some(s)),
            None => (None, None),
        };
        HubConfig {
            endpoint,
            cache_dir: hub_cache_dir(env),
            token,
            token_source,
            offline: is_true(env("HF_HUB_OFFLINE")) || is_true(env("TRANSFORMERS_OFFLINE")),
            max_resumes: 3,
        }
    }

    /// The process environment.
    pub fn from_process_env() -> HubConfig {
        HubConfig::from_env(&|k| std::env::var(k).ok())
    }

    /// A config for one endpoint and cache, no token (tests, tools).
    pub fn new(endpoint: &str, cache_dir: &Path) -> HubConfig {
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache_dir: cache_dir.to_path_buf(),
            token: None,
            token_source: None,
            offline: false,
            max_resumes: 3,
        }
    }

    pub fn with_token(mut self, token: Option<Token>) -> HubConfig {
        self.token_source = token.as_ref().map(|_| TokenSource::Given);
        self.token = token;
        self
    }

    /// The repo's page, where a gated model's licence is accepted.
    pub fn repo_page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.endpoint)
    }
}

/// `owner/name` (or a bare `name`) as the hub allows it: letters, digits, `-`, `_`, `.`, at most
/// 96 characters a part, no `..`, not starting with `-` or `.`.
pub fn valid_repo_id(repo: &str) -> bool {
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.is_empty() || parts.len() > 2 {
        return false;
    }
    parts.iter().all(|p| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with(['-', '.'])
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    })
}

/// A repo-relative file path that cannot climb out of the directory it is joined to.
pub fn valid_repo_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.len() <= 1024
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn cache_dir_follows_hf_hub_cache_then_hf_home_then_xdg() {
        let e = env_of(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")]);
        assert_eq!(hub_cache_dir(&e), PathBuf::from("/c"));
        let e = env_of(&[("HUGGINGFACE_HUB_CACHE", "/old"), ("HF_HOME", "/h")]);
        assert_eq!(hub_cache_dir(&e), PathBuf::from("/old"));
        let e = env_of(&[("HF_HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(hub_cache_dir(&e), PathBuf::from("/h/hub"));
        let e = env_of(&[("XDG_CACHE_HOME", "/x")]);
        assert_eq!(hub_cache_dir(&e), PathBuf::from("/x/huggingface/hub"));
        let e = env_of(&[]);
        let home = dirs::home_dir().unwrap();
        assert_eq!(hub_cache_dir(&e), home.join(".cache/huggingface/hub"));
    }

    #[test]
    fn token_from_env_then_token_path_then_home_file_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("token"), "hf_home_file\n").unwrap();
        let other = dir.path().join("other-token");
        std::fs::write(&other, "  hf_from_path  \n").unwrap();
        let h = home.to_str().unwrap();
        let o = other.to_str().unwrap();

        let e = env_of(&[("HF_HOME", h), ("HF_TOKEN", "hf_env"), ("HF_TOKEN_PATH", o)]);
        let (t, s) = resolve_token(&e).unwrap();
        assert_eq!((t.secret(), s), ("hf_env", TokenSource::Env));
        let e = env_of(&[("HF_HOME", h), ("HF_TOKEN", ""), ("HF_TOKEN_PATH", o)]);
        let (t, s) = resolve_token(&e).unwrap();
        assert_eq!(
            (t.secret(), s),
            ("hf_from_path", TokenSource::File(other.clone()))
        );
        let e = env_of(&[("HF_HOME", h)]);
        let (t, _) = resolve_token(&e).unwrap();
        assert_eq!(t.secret(), "hf_home_file");
        let e = env_of(&[("HF_HOME", h), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]);
        assert!(resolve_token(&e).is_none());
        // A binary token file is no token.
        std::fs::write(home.join("token"), b"\0\x01\x02").unwrap();
        assert!(resolve_token(&env_of(&[("HF_HOME", h)])).is_none());

        let cfg = HubConfig::from_env(&env_of(&[("HF_TOKEN", "hf_secret_123")]));
        let shown = format!("{cfg:?} {}", cfg.token.as_ref().unwrap());
        assert!(!shown.contains("hf_secret_123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn endpoint_and_offline_flags() {
        let cfg = HubConfig::from_env(&env_of(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "yes"),
        ]));
        assert_eq!(cfg.endpoint, "http://127.0.0.1:9");
        assert!(cfg.offline);
        let cfg = HubConfig::from_env(&env_of(&[("HF_HUB_OFFLINE", "0")]));
        assert!(!cfg.offline);
        assert_eq!(cfg.endpoint, DEFAULT_ENDPOINT);
    }

    #[test]
    fn repo_ids_and_paths_are_checked() {
        for ok in [
            "stabilityai/stable-diffusion-xl-base-1.0",
            "gpt2",
            "Wan-AI/Wan2.1-T2V-1.3B",
        ] {
            assert!(valid_repo_id(ok), "{ok}");
        }
        for bad in ["", "a/b/c", "../x", "a/..", "-a/b", "a b/c", "a/"] {
            assert!(!valid_repo_id(bad), "{bad}");
        }
        assert!(valid_repo_path("unet/diffusion_pytorch_model.safetensors"));
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\nb"] {
            assert!(!valid_repo_path(bad), "{bad:?}");
        }
    }
}
