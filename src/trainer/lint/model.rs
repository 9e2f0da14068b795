//! diffusion-pipe's model types and the paths each one reads (reference §5, "model types and
//! their path keys"), plus the other `[model]` options seen in its docs and examples.

use serde::Serialize;

/// What a path key must point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    File,
    Dir,
    FileOrDir,
}

impl Expect {
    /// "a file", "a directory", "a file or a directory".
    pub fn describe(self) -> &'static str {
        match self {
            Expect::File => "a file",
            Expect::Dir => "a directory",
            Expect::FileOrDir => "a file or a directory",
        }
    }
}

/// One path-valued key of a model type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathKey {
    pub key: &'static str,
    pub expect: Expect,
    /// Required on its own. Keys that are required as one of several alternatives (e.g.
    /// hunyuan-video's `ckpt_path` or its four single files) are `false` here; see
    /// [`alternatives`].
    pub required: bool,
    pub note: &'static str,
}

/// `text_encoders = [{path = FILE (or paths = [FILE, ...]), type = '...'}]`: a list of tables,
/// not a plain path. Listed as a path key so templates and the path picker see it.
pub const TEXT_ENCODERS: &str = "text_encoders";

const fn f(key: &'static str, required: bool, note: &'static str) -> PathKey {
    PathKey {
        key,
        expect: Expect::File,
        required,
        note,
    }
}
const fn d(key: &'static str, required: bool, note: &'static str) -> PathKey {
    PathKey {
        key,
        expect: Expect::Dir,
        required,
        note,
    }
}
const fn fd(key: &'static str, required: bool, note: &'static str) -> PathKey {
    PathKey {
        key,
        expect: Expect::FileOrDir,
        required,
        note,
    }
}

const COMFY_TE: PathKey = f(
    TEXT_ENCODERS,
    true,
    "list of {path = FILE (or paths = [FILE, ...]), type = '...'}: ComfyUI text encoder files",
);

const SDXL: &[PathKey] = &[f(
    "checkpoint_path",
    true,
    "the single .safetensors checkpoint (loaded with from_single_file), not a Hugging Face repo id",
)];
const FLUX: &[PathKey] = &[
    d(
        "diffusers_path",
        true,
        "Diffusers folder (FLUX.1-dev, -schnell or Kontext)",
    ),
    f(
        "transformer_path",
        false,
        "optional BFL-format transformer .safetensors overriding the Diffusers one",
    ),
];
const LTX_VIDEO: &[PathKey] = &[
    d(
        "diffusers_path",
        true,
        "Diffusers folder of LTX-Video (the text encoder comes from here)",
    ),
    f(
        "single_file_path",
        false,
        "single checkpoint file with transformer and VAE (newer LTX-Video versions)",
    ),
];
const HUNYUAN_VIDEO: &[PathKey] = &[
    d(
        "ckpt_path",
        false,
        "official ckpts folder; or set the four ComfyUI paths instead",
    ),
    f(
        "transformer_path",
        false,
        "ComfyUI transformer file (with vae_path, llm_path, clip_path)",
    ),
    f("vae_path", false, "ComfyUI VAE file"),
    d(
        "llm_path",
        false,
        "folder of the LLaVA-Llama-3 text encoder and tokenizer",
    ),
    d("clip_path", false, "folder of clip-vit-large-patch14"),
];
const COSMOS: &[PathKey] = &[
    f(
        "transformer_path",
        true,
        "Cosmos transformer checkpoint (.pt)",
    ),
    f("vae_path", true, "ComfyUI Cosmos VAE file"),
    f("text_encoder_path", true, "ComfyUI old T5-XXL file"),
];
const LUMINA_2: &[PathKey] = &[
    f("transformer_path", true, "ComfyUI Lumina 2 model file"),
    f("llm_path", true, "ComfyUI Gemma 2 2B file"),
    f("vae_path", true, "ComfyUI Flux VAE file"),
];
const WAN: &[PathKey] = &[
    d(
        "ckpt_path",
        true,
        "original Wan checkpoint folder (VAE and configs; transformer/T5 may be left out)",
    ),
    fd(
        "transformer_path",
        false,
        "ComfyUI transformer file, or the low/high-noise subfolder (Wan2.2 A14B)",
    ),
    f(
        "llm_path",
        false,
        "UMT5 .safetensors (ComfyUI or Kijai wrapper file)",
    ),
];
const CHROMA: &[PathKey] = &[
    d(
        "diffusers_path",
        true,
        "FLUX.1 dev or schnell Diffusers folder (VAE and text encoders)",
    ),
    f("transformer_path", true, "Chroma single model file"),
];
const HIDREAM: &[PathKey] = &[
    d("diffusers_path", true, "HiDream-I1 Diffusers folder"),
    d("llama3_path", true, "Meta-Llama-3.1-8B-Instruct folder"),
];
const DIFFUSERS_ONLY: &[PathKey] = &[d("diffusers_path", true, "the model's Diffusers folder")];
const COSMOS_PREDICT2: &[PathKey] = &[
    f(
        "transformer_path",
        true,
        "original model checkpoint (model.pt)",
    ),
    f("vae_path", true, "ComfyUI Wan 2.1 VAE file"),
    f(
        "t5_path",
        true,
        "ComfyUI old T5-XXL file (oldt5_xxl_fp16.safetensors)",
    ),
];
const ANIMA: &[PathKey] = &[
    f("transformer_path", true, "ComfyUI Anima model file"),
    f("vae_path", true, "ComfyUI Qwen-Image VAE file"),
    f("llm_path", true, "ComfyUI Qwen3 0.6B file"),
    f("llm_adapter_path", false, "optional LLM adapter weights"),
];
const QWEN_IMAGE: &[PathKey] = &[
    d(
        "diffusers_path",
        false,
        "Qwen-Image (or -Edit) Diffusers folder; or the three single paths",
    ),
    fd(
        "transformer_path",
        false,
        "ComfyUI transformer file (bf16), overrides the Diffusers one",
    ),
    fd("text_encoder_path", false, "ComfyUI Qwen2.5-VL file"),
    fd(
        "vae_path",
        false,
        "Diffusers VAE (the ComfyUI VAE is not supported)",
    ),
];
const HUNYUAN_IMAGE: &[PathKey] = &[
    fd("transformer_path", true, "ComfyUI HunyuanImage 2.1 file"),
    fd("vae_path", true, "ComfyUI VAE file"),
    fd("text_encoder_path", true, "ComfyUI Qwen2.5-VL file"),
    fd("byt5_path", true, "ComfyUI byT5 file"),
];
const AURAFLOW: &[PathKey] = &[
    f(
        "transformer_path",
        true,
        "ComfyUI AuraFlow (e.g. Pony V7) file",
    ),
    fd("text_encoder_path", true, "ComfyUI UMT5 file"),
    fd("vae_path", true, "ComfyUI SDXL VAE file"),
];
const COMFY_3: &[PathKey] = &[
    f("diffusion_model", true, "ComfyUI diffusion model file"),
    f("vae", true, "ComfyUI VAE file"),
    COMFY_TE,
];
const LTX2: &[PathKey] = &[
    f("diffusion_model", true, "ComfyUI LTX 2.3 checkpoint file"),
    f("text_encoder", true, "Gemma 3 text encoder file"),
];
const MINIMAX_H3: &[PathKey] = &[
    f("diffusion_model", true, "ComfyUI diffusion model file"),
    f("vae", true, "ComfyUI video VAE file"),
    f("audio_vae", true, "ComfyUI audio VAE file"),
    COMFY_TE,
];

static MODEL_TYPES: &[(&str, &[PathKey])] = &[
    ("sdxl", SDXL),
    ("flux", FLUX),
    ("ltx-video", LTX_VIDEO),
    ("hunyuan-video", HUNYUAN_VIDEO),
    ("cosmos", COSMOS),
    ("lumina_2", LUMINA_2),
    ("wan", WAN),
    ("chroma", CHROMA),
    ("hidream", HIDREAM),
    ("sd3", DIFFUSERS_ONLY),
    ("omnigen2", DIFFUSERS_ONLY),
    ("cosmos_predict2", COSMOS_PREDICT2),
    ("anima", ANIMA),
    ("qwen_image", QWEN_IMAGE),
    ("hunyuan_image", HUNYUAN_IMAGE),
    ("auraflow", AURAFLOW),
    ("z_image", COMFY_3),
    ("hunyuan_video_15", COMFY_3),
    ("flux2", COMFY_3),
    ("ernie_image", COMFY_3),
    ("ideogram4", COMFY_3),
    ("krea2", COMFY_3),
    ("ltx2", LTX2),
    ("minimax_h3", MINIMAX_H3),
];

/// Every model type diffusion-pipe (at the pinned commit) knows, with its path keys.
pub fn model_types() -> &'static [(&'static str, &'static [PathKey])] {
    MODEL_TYPES
}

/// The path keys of one model type (None for an unknown type).
pub fn model_path_keys(model_type: &str) -> Option<&'static [PathKey]> {
    MODEL_TYPES
        .iter()
        .find(|(t, _)| *t == model_type)
        .map(|(_, k)| *k)
}

/// One path key of one model type.
pub fn path_key(model_type: &str, key: &str) -> Option<&'static PathKey> {
    model_path_keys(model_type)?.iter().find(|p| p.key == key)
}

/// Model types whose paths are required as one complete set out of several: the requirement is
/// met when every key of at least one alternative is set.
pub fn alternatives(model_type: &str) -> &'static [&'static [&'static str]] {
    match model_type {
        "hunyuan-video" => &[
            &["ckpt_path"],
            &["transformer_path", "vae_path", "llm_path", "clip_path"],
        ],
        "qwen_image" => &[
            &["diffusers_path"],
            &["transformer_path", "text_encoder_path", "vae_path"],
        ],
        _ => &[],
    }
}

/// Non-path `[model]` options a type cannot do without.
pub(crate) fn required_options(model_type: &str) -> &'static [(&'static str, &'static str)] {
    match model_type {
        "auraflow" => &[(
            "max_sequence_length",
            "max_sequence_length = 768 for Pony V7, 256 for base AuraFlow",
        )],
        _ => &[],
    }
}

/// Whether any model type reads this key as a path.
pub(crate) fn is_any_path_key(key: &str) -> bool {
    MODEL_TYPES
        .iter()
        .any(|(_, ks)| ks.iter().any(|p| p.key == key))
}

/// `[model]` keys that are not paths, from diffusion-pipe's docs and examples (they vary per
/// model; unknown ones are reported as information only).
pub(crate) const MODEL_OPTIONS: &[&str] = &[
    "type",
    "dtype",
    "transformer_dtype",
    "diffusion_model_dtype",
    "timestep_sample_method",
    "sigmoid_scale",
    "guidance",
    "min_t",
    "max_t",
    "shift",
    "image_shift",
    "flux_shift",
    "lumina_shift",
    "bypass_guidance_embedding",
    "v_pred",
    "min_snr_gamma",
    "debiased_estimation_loss",
    "unet_lr",
    "text_encoder_1_lr",
    "text_encoder_2_lr",
    "first_frame_conditioning_p",
    "llama3_4bit",
    "max_llama3_sequence_length",
    "max_sequence_length",
    "cfg",
    "merge_adapters",
    "llm_adapter_lr",
    "vae_max_area",
    "vae_min_overlap",
];

/// The dtype names diffusion-pipe's DTYPE_MAP accepts.
pub const DTYPES: &[&str] = &[
    "float32",
    "float16",
    "bfloat16",
    "float8",
    "float8_e4m3fn",
    "float8_e5m2",
];

/// The usual spelling for common dtype mistakes.
pub(crate) fn dtype_alias(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_lowercase().as_str() {
        "bf16" | "bfloat" | "torch.bfloat16" => "bfloat16",
        "fp16" | "half" | "f16" | "torch.float16" => "float16",
        "fp32" | "float" | "f32" | "full" | "torch.float32" => "float32",
        "fp8" | "f8" | "e4m3" | "fp8_e4m3fn" | "float8_e4m3" => "float8",
        "fp8_e5m2" | "e5m2" => "float8_e5m2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_answers_per_type() {
        assert_eq!(
            path_key("sdxl", "checkpoint_path").unwrap().expect,
            Expect::File
        );
        assert_eq!(path_key("wan", "ckpt_path").unwrap().expect, Expect::Dir);
        assert!(path_key("wan", "ckpt_path").unwrap().required);
        assert_eq!(
            path_key("wan", "transformer_path").unwrap().expect,
            Expect::FileOrDir
        );
        assert!(path_key("sdxl", "diffusers_path").is_none());
        assert!(path_key("nope", "x").is_none());
        assert!(model_types().len() >= 24);
        assert!(is_any_path_key("llama3_path"));
        assert!(!is_any_path_key("dtype"));
        // Every type's keys are unique.
        for (t, keys) in model_types() {
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    !keys[i + 1..].iter().any(|o| o.key == k.key),
                    "{t}: {}",
                    k.key
                );
            }
            for alt in alternatives(t) {
                for k in *alt {
                    assert!(path_key(t, k).is_some(), "{t}: {k}");
                }
            }
        }
        assert_eq!(dtype_alias("BF16"), Some("bfloat16"));
    }
}
