//! Which files of a repo fit a config key: a single weights file for a file key, the whole repo
//! or one folder of it for a directory key (what each key needs comes from the linter's model
//! tables), with known-good sources per model type first.

use serde::{Deserialize, Serialize};

use super::listing::RepoFile;
use crate::trainer::lint::{self, Expect};

/// A known-good place to get what a model type's key needs. `path` is a file (file keys) or a
/// folder (directory keys) inside the repo; none means the whole repo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// diffusion-pipe's `[model] type`.
    pub model: String,
    /// The `[model]` key, e.g. `checkpoint_path`.
    pub key: String,
    pub repo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn src(model: &str, key: &str, repo: &str, path: Option<&str>, note: &str) -> HubSource {
    HubSource {
        model: model.into(),
        key: key.into(),
        repo: repo.into(),
        path: path.map(str::to_string),
        note: (!note.is_empty()).then(|| note.to_string()),
    }
}

/// The built-in sources: repos and files named by diffusion-pipe's docs and the model makers.
pub fn default_sources() -> Vec<HubSource> {
    vec![
        src(
            "sdxl",
            "checkpoint_path",
            "stabilityai/stable-diffusion-xl-base-1.0",
            Some("sd_xl_base_1.0.safetensors"),
            "SDXL 1.0 base, the single-file checkpoint",
        ),
        src(
            "flux",
            "diffusers_path",
            "black-forest-labs/FLUX.1-dev",
            None,
            "gated: accept the licence on the repo page first",
        ),
        src(
            "flux",
            "diffusers_path",
            "black-forest-labs/FLUX.1-schnell",
            None,
            "",
        ),
        src(
            "ltx-video",
            "diffusers_path",
            "Lightricks/LTX-Video",
            None,
            "",
        ),
        src(
            "ltx-video",
            "single_file_path",
            "Lightricks/LTX-Video",
            Some("ltx-video-2b-v0.9.1.safetensors"),
            "",
        ),
        src("wan", "ckpt_path", "Wan-AI/Wan2.1-T2V-1.3B", None, ""),
        src("wan", "ckpt_path", "Wan-AI/Wan2.1-T2V-14B", None, ""),
        src(
            "chroma",
            "diffusers_path",
            "black-forest-labs/FLUX.1-schnell",
            None,
            "Chroma takes the VAE and text encoders from FLUX.1 (dev or schnell)",
        ),
        src(
            "chroma",
            "transformer_path",
            "lodestones/Chroma",
            None,
            "pick one model file",
        ),
        src(
            "hidream",
            "diffusers_path",
            "HiDream-ai/HiDream-I1-Full",
            None,
            "",
        ),
        src(
            "hidream",
            "llama3_path",
            "meta-llama/Llama-3.1-8B-Instruct",
            None,
            "gated: accept the licence on the repo page first",
        ),
        src(
            "sd3",
            "diffusers_path",
            "stabilityai/stable-diffusion-3.5-medium",
            None,
            "gated",
        ),
        src(
            "sd3",
            "diffusers_path",
            "stabilityai/stable-diffusion-3.5-large",
            None,
            "gated",
        ),
        src("omnigen2", "diffusers_path", "OmniGen2/OmniGen2", None, ""),
        src("qwen_image", "diffusers_path", "Qwen/Qwen-Image", None, ""),
        src(
            "cosmos_predict2",
            "transformer_path",
            "nvidia/Cosmos-Predict2-2B-Text2Image",
            Some("model.pt"),
            "",
        ),
        src(
            "cosmos_predict2",
            "t5_path",
            "comfyanonymous/cosmos_1.0_text_encoder_and_VAE_ComfyUI",
            Some("text_encoders/oldt5_xxl_fp16.safetensors"),
            "the OLD T5-XXL",
        ),
        src(
            "cosmos",
            "text_encoder_path",
            "comfyanonymous/cosmos_1.0_text_encoder_and_VAE_ComfyUI",
            Some("text_encoders/oldt5_xxl_fp16.safetensors"),
            "the OLD T5-XXL",
        ),
    ]
}

/// The configured sources (first) and the built-in ones not overridden by them: a configured
/// entry for the same model, key and repo replaces the built-in one.
pub fn merge_sources(configured: Vec<HubSource>) -> Vec<HubSource> {
    let mut out = configured;
    for d in default_sources() {
        if !out
            .iter()
            .any(|c| c.model == d.model && c.key == d.key && c.repo == d.repo)
        {
            out.push(d);
        }
    }
    out
}

/// The sources for one model type and key.
pub fn sources_for<'a>(all: &'a [HubSource], model: &str, key: &str) -> Vec<&'a HubSource> {
    let key = bare_key(key);
    all.iter()
        .filter(|s| s.model == model && s.key == key)
        .collect()
}

/// `model.checkpoint_path` → `checkpoint_path`.
pub fn bare_key(key: &str) -> &str {
    key.strip_prefix("model.").unwrap_or(key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    File,
    Folder,
    Repo,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub kind: SuggestionKind,
    /// The file or folder in the repo; empty for the whole repo.
    pub path: String,
    /// The files to download.
    pub files: Vec<String>,
    pub bytes: u64,
    pub why: String,
    /// Named by a known-good source.
    pub known: bool,
}

/// Weights formats, in the order a single-file key prefers them.
const WEIGHT_EXTS: &[&str] = &["safetensors", "sft", "gguf", "pt", "pth", "ckpt", "bin"];

fn ext(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

fn file_suggestions(files: &[RepoFile], known: &[&HubSource]) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for s in known {
        if let Some(p) = &s.path
            && let Some(f) = files.iter().find(|f| &f.path == p)
        {
            out.push(Suggestion {
                kind: SuggestionKind::File,
                path: f.path.clone(),
                files: vec![f.path.clone()],
                bytes: f.size,
                why: s.note.clone().unwrap_or_else(|| "known-good source".into()),
                known: true,
            });
        }
    }
    // .safetensors first (diffusion-pipe loads those directly); other formats only when the
    // repo has no .safetensors at all.
    let best_ext = WEIGHT_EXTS
        .iter()
        .find(|e| files.iter().any(|f| ext(&f.path).as_deref() == Some(**e)));
    let Some(best_ext) = best_ext else {
        return out;
    };
    let mut singles: Vec<&RepoFile> = files
        .iter()
        .filter(|f| ext(&f.path).as_deref() == Some(*best_ext))
        .filter(|f| !out.iter().any(|s| s.path == f.path))
        .collect();
    // Top-level files are the single-file checkpoints; deeper ones are Diffusers components.
    // Among equals, the larger (the full model rather than a LoRA or a VAE) first.
    singles.sort_by(|a, b| {
        depth(&a.path)
            .cmp(&depth(&b.path))
            .then(b.size.cmp(&a.size))
            .then(a.path.cmp(&b.path))
    });
    out.extend(singles.into_iter().map(|f| Suggestion {
        kind: SuggestionKind::File,
        path: f.path.clone(),
        files: vec![f.path.clone()],
        bytes: f.size,
        why: format!("single .{best_ext} file"),
        known: false,
    }));
    out
}

fn folder(files: &[RepoFile], prefix: &str) -> (Vec<String>, u64) {
    let sel: Vec<&RepoFile> = files
        .iter()
        .filter(|f| {
            prefix.is_empty()
                || f.path
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        })
        .collect();
    (
        sel.iter().map(|f| f.path.clone()).collect(),
        sel.iter().map(|f| f.size).sum(),
    )
}

fn dir_suggestions(files: &[RepoFile], known: &[&HubSource]) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Suggestion>, prefix: &str, why: String, known: bool| {
        if out.iter().any(|s: &Suggestion| s.path == prefix) {
            return;
        }
        let (fs, bytes) = folder(files, prefix);
        if fs.is_empty() {
            return;
        }
        out.push(Suggestion {
            kind: if prefix.is_empty() {
                SuggestionKind::Repo
            } else {
                SuggestionKind::Folder
            },
            path: prefix.to_string(),
            files: fs,
            bytes,
            why,
            known,
        });
    };
    for s in known {
        let p = s.path.as_deref().unwrap_or("").trim_matches('/');
        let why = s.note.clone().unwrap_or_else(|| "known-good source".into());
        push(&mut out, p, why, true);
    }
    let root_model = files
        .iter()
        .any(|f| f.path == "model_index.json" || f.path == "config.json");
    push(
        &mut out,
        "",
        if root_model {
            "the whole repo (a Diffusers / model folder)".into()
        } else {
            "the whole repo".into()
        },
        false,
    );
    // Subfolders that are models of their own (their own model_index.json or config.json),
    // shallowest first; Diffusers components of a root model are not offered alone.
    if !root_model {
        let mut subs: Vec<&str> = files
            .iter()
            .filter_map(|f| {
                f.path
                    .strip_suffix("/model_index.json")
                    .or_else(|| f.path.strip_suffix("/config.json"))
            })
            .collect();
        subs.sort_by(|a, b| depth(a).cmp(&depth(b)).then(a.cmp(b)));
        subs.dedup();
        for s in subs {
            push(&mut out, s, format!("the folder {s}"), false);
        }
    }
    out
}

/// What to download for `key` of `model_type` from a repo with these files, best first.
/// An unknown type or key gets both kinds.
pub fn suggest(
    model_type: &str,
    key: &str,
    files: &[RepoFile],
    sources: &[HubSource],
    repo: &str,
) -> Vec<Suggestion> {
    let key = bare_key(key);
    let expect = lint::path_key(model_type, key)
        .map(|p| p.expect)
        .unwrap_or(Expect::FileOrDir);
    let known: Vec<&HubSource> = sources_for(sources, model_type, key)
        .into_iter()
        .filter(|s| s.repo.eq_ignore_ascii_case(repo))
        .collect();
    match expect {
        Expect::File => file_suggestions(files, &known),
        Expect::Dir => dir_suggestions(files, &known),
        Expect::FileOrDir => {
            let mut v = file_suggestions(files, &known);
            v.extend(dir_suggestions(files, &known));
            v
        }
    }
}

/// Whether a key needs a file, a directory or either (unknown keys: either).
pub fn expect_of(model_type: &str, key: &str) -> Expect {
    lint::path_key(model_type, bare_key(key))
        .map(|p| p.expect)
        .unwrap_or(Expect::FileOrDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64) -> RepoFile {
        RepoFile {
            path: path.into(),
            size,
        }
    }

    fn sdxl_repo() -> Vec<RepoFile> {
        vec![
            f("model_index.json", 600),
            f("sd_xl_base_1.0.safetensors", 6_938_078_334),
            f("sd_xl_base_1.0_0.9vae.safetensors", 6_938_078_334),
            f("sd_xl_offset_example-lora_1.0.safetensors", 49_553_604),
            f("unet/config.json", 1_700),
            f("unet/diffusion_pytorch_model.safetensors", 10_270_077_736),
            f("vae/diffusion_pytorch_model.safetensors", 334_643_268),
        ]
    }

    #[test]
    fn sdxl_checkpoint_gets_the_known_single_file_first_then_top_level_files() {
        let s = suggest(
            "sdxl",
            "model.checkpoint_path",
            &sdxl_repo(),
            &default_sources(),
            "stabilityai/stable-diffusion-xl-base-1.0",
        );
        let paths: Vec<&str> = s.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "sd_xl_base_1.0.safetensors",
                "sd_xl_base_1.0_0.9vae.safetensors",
                "sd_xl_offset_example-lora_1.0.safetensors",
                "unet/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors",
            ]
        );
        assert!(s[0].known);
        assert_eq!(s[0].bytes, 6_938_078_334);
        assert!(s.iter().all(|s| s.kind == SuggestionKind::File));
    }

    #[test]
    fn a_directory_key_gets_the_whole_repo_with_its_size() {
        let s = suggest("flux", "diffusers_path", &sdxl_repo(), &[], "x/y");
        assert_eq!(
            s.len(),
            1,
            "components of a root model are not offered alone"
        );
        assert_eq!(s[0].kind, SuggestionKind::Repo);
        assert_eq!(s[0].files.len(), 7);
        assert_eq!(
            s[0].bytes,
            600 + 6_938_078_334 * 2 + 49_553_604 + 1_700 + 10_270_077_736 + 334_643_268
        );
    }

    #[test]
    fn model_subfolders_and_configured_sources() {
        let files = vec![
            f("README.md", 10),
            f("dev/model_index.json", 1),
            f("dev/transformer/x.safetensors", 100),
            f("schnell/model_index.json", 1),
            f("schnell/vae/y.safetensors", 50),
        ];
        let configured = merge_sources(vec![HubSource {
            model: "flux".into(),
            key: "diffusers_path".into(),
            repo: "me/flux-pack".into(),
            path: Some("schnell".into()),
            note: Some("my pick".into()),
        }]);
        let s = suggest(
            "flux",
            "diffusers_path",
            &files,
            &configured,
            "me/flux-pack",
        );
        let got: Vec<(&str, u64, bool)> = s
            .iter()
            .map(|s| (s.path.as_str(), s.bytes, s.known))
            .collect();
        assert_eq!(
            got,
            vec![("schnell", 51, true), ("", 162, false), ("dev", 101, false)]
        );
        assert_eq!(s[0].why, "my pick");
    }

    #[test]
    fn no_safetensors_falls_back_to_other_weights_and_either_kind_for_unknown_keys() {
        let files = vec![f("model.pt", 5), f("config.json", 1)];
        let s = suggest(
            "cosmos_predict2",
            "transformer_path",
            &files,
            &default_sources(),
            "a/b",
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].path, "model.pt");
        let s = suggest("no-such-type", "whatever", &files, &[], "a/b");
        let kinds: Vec<SuggestionKind> = s.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, vec![SuggestionKind::File, SuggestionKind::Repo]);
    }

    #[test]
    fn hub_sources_are_read_from_dpgui_config_before_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(
            &f,
            "[[hub_sources]]\nmodel = \"wan\"\nkey = \"ckpt_path\"\nrepo = \"me/wan-mirror\"\n",
        )
        .unwrap();
        let o = crate::settings::Overrides {
            config_file: Some(f.clone()),
            ..Default::default()
        };
        let s = crate::settings::resolve(&o, &|_| None);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let wan: Vec<&str> = sources_for(&s.hub_sources, "wan", "model.ckpt_path")
            .iter()
            .map(|h| h.repo.as_str())
            .collect();
        assert_eq!(
            wan,
            vec![
                "me/wan-mirror",
                "Wan-AI/Wan2.1-T2V-1.3B",
                "Wan-AI/Wan2.1-T2V-14B"
            ]
        );
        assert_eq!(s.hub_sources.len(), default_sources().len() + 1);
        // A misspelt field is reported, not silently ignored.
        std::fs::write(
            &f,
            "[[hub_sources]]\nmodel = \"wan\"\nkey = \"k\"\nrepository = \"x/y\"\n",
        )
        .unwrap();
        let s = crate::settings::resolve(&o, &|_| None);
        assert!(!s.problems.is_empty());
        assert_eq!(s.hub_sources, default_sources());
    }

    #[test]
    fn merge_keeps_configured_first_and_replaces_same_repo_defaults() {
        let c = vec![HubSource {
            model: "sdxl".into(),
            key: "checkpoint_path".into(),
            repo: "stabilityai/stable-diffusion-xl-base-1.0".into(),
            path: Some("sd_xl_base_1.0_0.9vae.safetensors".into()),
            note: None,
        }];
        let all = merge_sources(c.clone());
        let sdxl = sources_for(&all, "sdxl", "checkpoint_path");
        assert_eq!(sdxl, vec![&c[0]]);
        assert_eq!(all.len(), default_sources().len());
    }
}
