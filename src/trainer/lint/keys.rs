//! The keys diffusion-pipe reads, per section, and "did you mean" for the others.

use toml_edit::TableLike;

use super::codes;
use super::text::{Ctx, key_span};

/// Top-level keys of the main config (reference §5, plus the ones diffusion-pipe's own examples
/// show commented out).
pub const MAIN_KEYS: &[&str] = &[
    "output_dir",
    "dataset",
    "epochs",
    "max_steps",
    "micro_batch_size_per_gpu",
    "image_micro_batch_size_per_gpu",
    "pipeline_stages",
    "gradient_accumulation_steps",
    "gradient_clipping",
    "warmup_steps",
    "lr_scheduler",
    "force_constant_lr",
    "blocks_to_swap",
    "pseudo_huber_c",
    "eval_datasets",
    "eval_every_n_epochs",
    "eval_every_n_steps",
    "eval_every_n_examples",
    "eval_before_first_step",
    "eval_micro_batch_size_per_gpu",
    "image_eval_micro_batch_size_per_gpu",
    "eval_gradient_accumulation_steps",
    "disable_block_swap_for_eval",
    "save_every_n_epochs",
    "save_every_n_steps",
    "save_every_n_examples",
    "checkpoint_every_n_epochs",
    "checkpoint_every_n_minutes",
    "activation_checkpointing",
    "reentrant_activation_checkpointing",
    "partition_method",
    "partition_split",
    "save_dtype",
    "caching_batch_size",
    "map_num_proc",
    "compile",
    "steps_per_print",
    "logging_steps",
    "video_clip_mode",
    "x_axis_examples",
    "uncond_fraction",
    "resume_from_checkpoint",
    "regenerate_cache",
    "model",
    "adapter",
    "optimizer",
    "monitoring",
];

pub const SAVE_KEYS: &[&str] = &[
    "save_every_n_epochs",
    "save_every_n_steps",
    "save_every_n_examples",
];

pub const CHECKPOINT_KEYS: &[&str] = &["checkpoint_every_n_epochs", "checkpoint_every_n_minutes"];

pub const ADAPTER_KEYS: &[&str] = &[
    "type",
    "rank",
    "alpha",
    "dtype",
    "dropout",
    "init_from_existing",
    "fuse_adapters",
    "decompose_factor",
];

pub const MONITORING_KEYS: &[&str] = &[
    "enable_wandb",
    "wandb_api_key",
    "wandb_tracker_name",
    "wandb_run_name",
];

/// Built-in optimizer types (matched case-insensitively by diffusion-pipe).
pub const BUILTIN_OPTIMIZERS: &[&str] = &[
    "adamw",
    "adamw8bit",
    "adamw_optimi",
    "stableadamw",
    "sgd",
    "adamw8bitkahan",
    "offload",
    "automagic",
    "genericoptim",
];

/// Well-known pytorch_optimizer classes, to catch a wrong case (the lookup is case-sensitive).
pub const PYTORCH_OPTIMIZER_CLASSES: &[&str] = &[
    "Prodigy",
    "CAME",
    "Lion",
    "DAdaptAdam",
    "DAdaptLion",
    "ScheduleFreeAdamW",
    "AdEMAMix",
    "SOAP",
    "Muon",
    "Ranger",
    "AdaBelief",
    "Adan",
    "Lamb",
    "MADGRAD",
    "Tiger",
    "LaProp",
    "AdamP",
];

/// Keys a dataset config accepts at the top level and (except `directory`) in each
/// `[[directory]]` as an override.
pub const DATASET_SETTINGS: &[&str] = &[
    "resolutions",
    "enable_ar_bucket",
    "min_ar",
    "max_ar",
    "num_ar_buckets",
    "ar_buckets",
    "frame_buckets",
    "size_buckets",
    "num_repeats",
    "caption_prefix",
    "shuffle_tags",
    "skip_empty_caption",
    "cache_shuffle_num",
    "cache_shuffle_delimiter",
    "shuffle_metadata",
    "online_captions",
];

pub const DATASET_TOP_ONLY: &[&str] = &["directory", "subsample_ratio"];

pub const DIRECTORY_ONLY: &[&str] = &["path", "mask_path", "control_path", "default_mask_file"];

/// Optimal-string-alignment distance (a swap of two neighbours counts 1), ASCII-insensitive case.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (n, m) = (a.len(), b.len());
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

/// The closest candidate and its distance.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<(&'a str, usize)> {
    candidates
        .iter()
        .map(|c| (*c, distance(word, c)))
        .min_by_key(|(_, d)| *d)
}

/// Close enough to be a typo of the candidate.
pub fn is_typo(word: &str, candidate: &str, dist: usize) -> bool {
    let len = word.chars().count().max(candidate.chars().count());
    dist > 0 && (dist <= 1 || (dist <= 2 && len >= 6) || (dist <= 3 && len >= 14))
}

/// Reports the keys of `table` not in `known`: a warning naming the closest known key. With
/// `lenient` (the `[model]` table, whose options vary per model) only likely typos are warnings,
/// the rest information.
pub(crate) fn report_unknown(
    ctx: &mut Ctx<'_>,
    table: &dyn TableLike,
    known: &[&[&str]],
    section: &str,
    lenient: bool,
) {
    for (key, _) in table.iter() {
        if !known.iter().any(|list| list.contains(&key)) {
            unknown_key(ctx, table, key, known, section, lenient);
        }
    }
}

/// Reports one unknown key (see [`report_unknown`]).
pub(crate) fn unknown_key(
    ctx: &mut Ctx<'_>,
    table: &dyn TableLike,
    key: &str,
    known: &[&[&str]],
    section: &str,
    lenient: bool,
) {
    let best = known
        .iter()
        .filter_map(|list| closest(key, list))
        .min_by_key(|(_, d)| *d);
    let span = key_span(table, key);
    match best {
        Some((c, d)) if is_typo(key, c, d) => ctx.warn(
            span,
            codes::UNKNOWN_KEY,
            format!(
                "unknown key `{key}`{section}: did you mean `{c}`? (diffusion-pipe ignores \
                 unknown keys)"
            ),
            format!("rename it to `{c}`"),
        ),
        best => {
            let hint = best.map_or(String::new(), |(c, _)| {
                format!(" (closest known key: `{c}`)")
            });
            if lenient {
                ctx.info(
                    span,
                    codes::UNKNOWN_KEY,
                    format!(
                        "`{key}` is not a [model] option dpgui knows{hint}; options vary per \
                         model, see diffusion-pipe's docs/supported_models.md"
                    ),
                    None,
                );
            } else {
                ctx.warn(
                    span,
                    codes::UNKNOWN_KEY,
                    format!("unknown key `{key}`{section}: diffusion-pipe ignores it{hint}"),
                    "remove it, or correct its spelling".to_string(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(distance("epochs", "epochs"), 0);
        assert_eq!(distance("epoch", "epochs"), 1);
        assert_eq!(distance("epcohs", "epochs"), 1);
        assert_eq!(distance("Epochs", "epochs"), 0);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(
            closest("save_every_n_epoch", SAVE_KEYS),
            Some(("save_every_n_epochs", 1))
        );
        assert!(is_typo("rnak", "rank", 1));
        assert!(!is_typo("xy", "ab", 2));
        assert!(!is_typo("same", "same", 0));
    }
}
