//! The main config's rules (reference §5).

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike, Value};

use super::keys::{
    self, ADAPTER_KEYS, BUILTIN_OPTIMIZERS, CHECKPOINT_KEYS, MAIN_KEYS, MONITORING_KEYS,
    PYTORCH_OPTIMIZER_CLASSES, SAVE_KEYS,
};
use super::model::{
    self, DTYPES, Expect, MODEL_OPTIONS, TEXT_ENCODERS, alternatives, dtype_alias, is_any_path_key,
    model_path_keys, required_options,
};
use super::paths::{PathRule, check_path, resolve};
use super::text::{Ctx, Get, key_span, type_name, value_int, value_number};
use super::{Fs, PathKind, codes};

/// What the main config points at, for the caller to lint next.
pub(crate) struct MainOutcome {
    /// The resolved `dataset` path, its kind, and the value's span.
    pub(crate) dataset: Option<(PathBuf, PathKind, Option<Range<usize>>)>,
    /// Resolved eval dataset config paths, kinds and spans.
    pub(crate) eval: Vec<(PathBuf, PathKind, Option<Range<usize>>)>,
    pub(crate) derived: Vec<String>,
}

const MISSING_AT: Option<Range<usize>> = Some(0..0);

/// A batch size: one number, or `[[resolution, n], ...]` (in file order, duplicates kept).
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    One(i64),
    PerResolution(Vec<(f64, i64)>),
}

/// What train.py reads from a main config to size its batches (for
/// `trainer::dataset::buckets`). `None` in a field: set, but not usable.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSettings {
    /// `micro_batch_size_per_gpu` (1 when absent).
    pub micro: Option<Batch>,
    /// `image_micro_batch_size_per_gpu`, for 1-frame buckets; `micro` when absent.
    pub image_micro: Option<Batch>,
    /// `gradient_accumulation_steps` (1 when absent).
    pub gradient_accumulation_steps: Option<i64>,
    /// `pipeline_stages` (1 when absent): data-parallel size = GPUs / pipeline_stages.
    pub pipeline_stages: Option<i64>,
    /// `[model] type`.
    pub model_type: Option<String>,
    /// `[model] ckpt_path` and `transformer_path` as written: where Wan's config.json is,
    /// which tells Wan 2.2 5B (its own size rounding and frame rate) apart.
    pub ckpt_path: Option<String>,
    pub transformer_path: Option<String>,
}

/// Reads [`BatchSettings`] with the linter's own readers (their findings are dropped).
/// None when `text` is not valid TOML.
pub fn batch_settings(text: &str) -> Option<BatchSettings> {
    let mut ctx = Ctx::new(Path::new(""), text);
    let doc = ctx.parse()?;
    let top: &dyn TableLike = doc.as_table();
    // Outer None: absent; inner None: set but unusable.
    let read = |ctx: &mut Ctx<'_>, key: &str| top.get(key).map(|_| batch(ctx, top, key));
    let micro = read(&mut ctx, "micro_batch_size_per_gpu").unwrap_or(Some(Batch::One(1)));
    let image_micro = read(&mut ctx, "image_micro_batch_size_per_gpu").unwrap_or(micro.clone());
    let mut g = Get {
        ctx: &mut ctx,
        table: top,
        section: "",
    };
    let mut int = |key: &str| match top.get(key) {
        None => Some(1),
        Some(_) => g.int(key, 1).map(|v| v.0),
    };
    let gradient_accumulation_steps = int("gradient_accumulation_steps");
    let pipeline_stages = int("pipeline_stages");
    let model = top.get("model").and_then(Item::as_table_like);
    let model_str = |key: &str| {
        model
            .and_then(|m| m.get(key))
            .and_then(Item::as_str)
            .map(str::to_string)
    };
    Some(BatchSettings {
        micro,
        image_micro,
        gradient_accumulation_steps,
        pipeline_stages,
        model_type: model_str("type"),
        ckpt_path: model_str("ckpt_path"),
        transformer_path: model_str("transformer_path"),
    })
}

pub(crate) fn check(
    ctx: &mut Ctx<'_>,
    top: &dyn TableLike,
    base: &Path,
    fs: &dyn Fs,
) -> MainOutcome {
    keys::report_unknown(ctx, top, &[MAIN_KEYS], "", false);
    let mut out = MainOutcome {
        dataset: None,
        eval: Vec::new(),
        derived: Vec::new(),
    };

    // --- Required top-level keys
    let (output_dir, dataset) = {
        let mut g = Get {
            ctx,
            table: top,
            section: "",
        };
        (g.str("output_dir"), g.str("dataset"))
    };
    match output_dir {
        None if top.get("output_dir").is_none() => ctx.error(
            MISSING_AT,
            codes::MISSING_KEY,
            "required key `output_dir` is missing".to_string(),
            "add output_dir = '/path/to/training_runs' (each run makes a new folder in it)"
                .to_string(),
        ),
        None => {}
        Some((v, span)) => {
            check_path(
                ctx,
                base,
                fs,
                v,
                span,
                &PathRule {
                    label: "output_dir",
                    key: "output_dir",
                    expect: Expect::Dir,
                    may_be_missing: true,
                    hub_check: false,
                    note: "diffusion-pipe creates it",
                },
            );
        }
    }
    match dataset {
        None if top.get("dataset").is_none() => ctx.error(
            MISSING_AT,
            codes::MISSING_KEY,
            "required key `dataset` is missing".to_string(),
            "add dataset = '/path/to/dataset.toml'".to_string(),
        ),
        None => {}
        Some((v, span)) => {
            let kind = check_path(
                ctx,
                base,
                fs,
                v,
                span.clone(),
                &PathRule {
                    label: "dataset",
                    key: "dataset",
                    expect: Expect::File,
                    may_be_missing: false,
                    hub_check: false,
                    note: "the dataset config TOML",
                },
            );
            if !v.trim().is_empty() {
                out.dataset = Some((resolve(base, v), kind, span));
            }
        }
    }

    let mut g = Get {
        ctx,
        table: top,
        section: "",
    };
    let epochs = g.int("epochs", 1);
    g.int("max_steps", 1);
    for k in SAVE_KEYS {
        g.int(k, 1);
    }
    let pipeline_stages = g.int("pipeline_stages", 1).map(|p| p.0);
    let grad_accum = g.int("gradient_accumulation_steps", 1).map(|g| g.0);
    g.int("eval_gradient_accumulation_steps", 1);
    g.number("gradient_clipping", 0.0);
    g.int("warmup_steps", 0);
    g.number("force_constant_lr", 0.0);
    g.number("pseudo_huber_c", 0.0);
    let blocks_to_swap = g.int("blocks_to_swap", 0);
    for k in [
        "eval_every_n_epochs",
        "eval_every_n_steps",
        "eval_every_n_examples",
    ] {
        g.int(k, 1);
    }
    for k in [
        "eval_before_first_step",
        "disable_block_swap_for_eval",
        "reentrant_activation_checkpointing",
        "compile",
        "x_axis_examples",
        "regenerate_cache",
    ] {
        g.bool(k);
    }
    g.int("checkpoint_every_n_epochs", 1);
    g.number("checkpoint_every_n_minutes", 0.0);
    for k in [
        "caching_batch_size",
        "map_num_proc",
        "steps_per_print",
        "logging_steps",
    ] {
        g.int(k, 1);
    }
    if let Some((u, span)) = g.number("uncond_fraction", 0.0)
        && u > 1.0
    {
        g.ctx.error(
            span,
            codes::INVALID_VALUE,
            format!("`uncond_fraction` is {u}; it is a fraction between 0 and 1"),
            "set `uncond_fraction` between 0 and 1".to_string(),
        );
    }
    one_of(&mut g, "lr_scheduler", &["constant", "linear", "cosine"]);
    one_of(
        &mut g,
        "video_clip_mode",
        &["single_beginning", "single_middle", "multiple_overlapping"],
    );
    if let Some((v, span)) = g.str("save_dtype") {
        dtype(g.ctx, "save_dtype", v, span, &[]);
    }
    if epochs.is_none() && top.get("epochs").is_none() {
        ctx.error(
            MISSING_AT,
            codes::MISSING_KEY,
            "required key `epochs` is missing".to_string(),
            "add epochs = 1000 (set it high and stop the run when it is good)".to_string(),
        );
    }
    if !SAVE_KEYS.iter().any(|k| top.contains_key(k)) {
        ctx.error(
            MISSING_AT,
            codes::MISSING_KEY,
            "none of save_every_n_epochs, save_every_n_steps, save_every_n_examples is set: \
             diffusion-pipe needs one to know when to save the model"
                .to_string(),
            "add e.g. save_every_n_epochs = 2".to_string(),
        );
    }
    activation_checkpointing(ctx, top);
    partition(ctx, top, pipeline_stages);
    let micro = batch(ctx, top, "micro_batch_size_per_gpu");
    let image_micro = batch(ctx, top, "image_micro_batch_size_per_gpu");
    batch(ctx, top, "eval_micro_batch_size_per_gpu");
    batch(ctx, top, "image_eval_micro_batch_size_per_gpu");
    if let Some(item) = top.get("resume_from_checkpoint")
        && item.as_bool().is_none()
        && item.as_str().is_none()
    {
        ctx.wrong_type(
            "resume_from_checkpoint",
            item,
            "true or the name of a run directory",
        );
    }

    // --- Checkpoints
    let set: Vec<&str> = CHECKPOINT_KEYS
        .iter()
        .copied()
        .filter(|k| top.contains_key(k))
        .collect();
    if set.len() > 1 {
        ctx.warn(
            key_span(top, set[1]),
            codes::CHECKPOINT_CONFLICT,
            format!(
                "both {} are set; diffusion-pipe's example says to set only one",
                set.join(" and ")
            ),
            format!("keep one of {}", set.join(", ")),
        );
    } else if set.is_empty() {
        let at = SAVE_KEYS
            .iter()
            .find_map(|k| key_span(top, k))
            .or(MISSING_AT);
        ctx.warn(
            at,
            codes::NO_CHECKPOINT,
            "no checkpoint_every_n_epochs or checkpoint_every_n_minutes: no resumable \
             checkpoint exists until training ends, so a crash or a stop loses the run"
                .to_string(),
            "add checkpoint_every_n_minutes = 120 (or checkpoint_every_n_epochs = 1)".to_string(),
        );
    }

    // --- Tables
    let model_type = model_table(ctx, top, base, fs);
    let has_adapter = adapter_table(ctx, top, base, fs, model_type.as_deref());
    optimizer_table(ctx, top);
    monitoring_table(ctx, top);

    // --- Block swap
    if let Some((n, span)) = blocks_to_swap
        && n > 0
    {
        if let Some(p) = pipeline_stages
            && p != 1
        {
            ctx.error(
                span.clone(),
                codes::BLOCK_SWAP,
                format!("blocks_to_swap needs pipeline_stages = 1 (it is {p})"),
                "set pipeline_stages = 1, or remove blocks_to_swap".to_string(),
            );
        }
        if !has_adapter {
            ctx.error(
                span,
                codes::BLOCK_SWAP,
                "blocks_to_swap only works when training a LoRA: there is no [adapter] table"
                    .to_string(),
                "add an [adapter] table (type = 'lora', rank = 32), or remove blocks_to_swap"
                    .to_string(),
            );
        }
    }

    out.eval = eval_datasets(ctx, top, base, fs);

    // --- Derived values
    let ps = pipeline_stages.unwrap_or(1).max(1);
    let ga = grad_accum.unwrap_or(1).max(1);
    let at = key_span(top, "micro_batch_size_per_gpu")
        .or_else(|| key_span(top, "pipeline_stages"))
        .or(MISSING_AT);
    out.derived = derived(ps, ga, micro.as_ref(), image_micro.as_ref());
    for line in &out.derived {
        ctx.info(at.clone(), codes::DERIVED, line.clone(), None);
    }
    out
}

fn one_of(g: &mut Get<'_, '_, '_>, key: &str, allowed: &[&str]) {
    if let Some((v, span)) = g.str(key)
        && !allowed.contains(&v)
    {
        let best = keys::closest(v, allowed).map_or(allowed[0], |(c, _)| c);
        g.ctx.error(
            span,
            codes::INVALID_VALUE,
            format!("`{key}` = '{v}' is not one of: {}", allowed.join(", ")),
            format!("use {key} = '{best}'"),
        );
    }
}

/// Checks a dtype name. `extra`: more values this key accepts.
fn dtype(ctx: &mut Ctx<'_>, label: &str, v: &str, span: Option<Range<usize>>, extra: &[&str]) {
    if DTYPES.contains(&v) || extra.contains(&v) {
        return;
    }
    let suggestion = dtype_alias(v)
        .or_else(|| keys::closest(v, DTYPES).map(|(c, _)| c))
        .unwrap_or("bfloat16");
    ctx.error(
        span,
        codes::INVALID_DTYPE,
        format!(
            "`{label}` = '{v}' is not a dtype diffusion-pipe knows ({})",
            DTYPES.join(", ")
        ),
        format!("use '{suggestion}'"),
    );
}

fn activation_checkpointing(ctx: &mut Ctx<'_>, top: &dyn TableLike) {
    let Some(item) = top.get("activation_checkpointing") else {
        return;
    };
    match item {
        Item::Value(Value::Boolean(_)) => {}
        Item::Value(Value::String(s)) if s.value() == "unsloth" => {}
        Item::Value(Value::String(s)) => ctx.error(
            item.span(),
            codes::INVALID_VALUE,
            format!(
                "activation_checkpointing = '{}': only true, false or 'unsloth'",
                s.value()
            ),
            "use activation_checkpointing = true (or 'unsloth')".to_string(),
        ),
        _ => ctx.wrong_type("activation_checkpointing", item, "true, false or 'unsloth'"),
    }
}

fn partition(ctx: &mut Ctx<'_>, top: &dyn TableLike, stages: Option<i64>) {
    let mut g = Get {
        ctx,
        table: top,
        section: "",
    };
    if let Some((m, span)) = g.str("partition_method")
        && !(matches!(m, "parameters" | "uniform" | "manual") || m.starts_with("type:"))
    {
        g.ctx.error(
            span,
            codes::INVALID_VALUE,
            format!(
                "partition_method = '{m}': use 'parameters', 'uniform', 'manual' (with \
                 partition_split) or 'type:<regex>'"
            ),
            "use partition_method = 'parameters'".to_string(),
        );
    }
    let Some(item) = top.get("partition_split") else {
        return;
    };
    let Some(a) = item.as_array() else {
        ctx.wrong_type("partition_split", item, "an array of layer indices");
        return;
    };
    if a.iter().any(|v| value_int(v).is_none()) {
        ctx.error(
            item.span(),
            codes::INVALID_VALUE,
            "partition_split must list whole layer indices, e.g. [10, 20]".to_string(),
            "write partition_split as integers".to_string(),
        );
        return;
    }
    let stages = stages.unwrap_or(1);
    if a.len() as i64 != stages - 1 {
        ctx.error(
            item.span(),
            codes::INVALID_VALUE,
            format!(
                "partition_split has {} split points; with pipeline_stages = {stages} it needs {}",
                a.len(),
                stages - 1
            ),
            "give pipeline_stages - 1 split points".to_string(),
        );
    }
}

fn batch(ctx: &mut Ctx<'_>, top: &dyn TableLike, key: &str) -> Option<Batch> {
    let item = top.get(key)?;
    if let Item::Value(v) = item {
        if let Some(n) = value_int(v) {
            if n >= 1 {
                return Some(Batch::One(n));
            }
        } else if let Some(a) = v.as_array() {
            let pairs: Vec<(f64, i64)> = a
                .iter()
                .filter_map(|e| {
                    let p = e.as_array()?;
                    if p.len() != 2 {
                        return None;
                    }
                    let r = value_number(p.get(0)?)?;
                    let n = value_int(p.get(1)?)?;
                    (r > 0.0 && n >= 1).then_some((r, n))
                })
                .collect();
            if pairs.len() == a.len() && !pairs.is_empty() {
                return Some(Batch::PerResolution(pairs));
            }
        }
    }
    ctx.error(
        item.span(),
        codes::INVALID_VALUE,
        format!(
            "`{key}` must be a whole number of at least 1, or per-resolution pairs like \
             [[512, 4], [1024, 1]] (it is {})",
            type_name(item)
        ),
        format!("write e.g. {key} = 1"),
    );
    None
}

fn derived(ps: i64, ga: i64, micro: Option<&Batch>, image_micro: Option<&Batch>) -> Vec<String> {
    // Saturating: absurd values must give absurd numbers, never an overflow panic.
    let gpu_counts: Vec<i64> = [1, 2, 4, 8]
        .iter()
        .map(|dp: &i64| dp.saturating_mul(ps))
        .collect();
    let gpus = |n: i64| format!("{n} GPU{}", if n == 1 { "" } else { "s" });
    let mut lines = Vec::new();
    let dp_list: Vec<String> = gpu_counts
        .iter()
        .map(|&n| format!("{} → {}", gpus(n), n / ps.max(1)))
        .collect();
    lines.push(if ps == 1 {
        format!(
            "data-parallel degree = GPUs / pipeline_stages (1): {}",
            dp_list.join(", ")
        )
    } else {
        format!(
            "data-parallel degree = GPUs / pipeline_stages ({ps}; the GPU count must be a \
             multiple of {ps}): {}",
            dp_list.join(", ")
        )
    });
    let global = |what: &str, per_gpu: i64| {
        let list: Vec<String> = gpu_counts
            .iter()
            .map(|&n| {
                let global = per_gpu.saturating_mul(ga).saturating_mul(n / ps.max(1));
                format!("{} → {}", gpus(n), global)
            })
            .collect();
        format!(
            "global batch size{what} = {per_gpu} per GPU × gradient_accumulation_steps {ga} × \
             data-parallel degree: {}",
            list.join(", ")
        )
    };
    let mut add = |label: &str, b: &Batch| match b {
        Batch::One(n) => lines.push(global(label, *n)),
        Batch::PerResolution(pairs) => {
            for (r, n) in pairs {
                lines.push(global(&format!("{label} at resolution {r}"), *n));
            }
        }
    };
    add("", micro.unwrap_or(&Batch::One(1)));
    if let Some(b) = image_micro {
        add(" for images", b);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// [model]

fn table<'d>(ctx: &mut Ctx<'_>, top: &'d dyn TableLike, key: &str) -> Option<&'d dyn TableLike> {
    let item = top.get(key)?;
    match item.as_table_like() {
        Some(t) => Some(t),
        None => {
            ctx.wrong_type(key, item, &format!("a table ([{key}])"));
            None
        }
    }
}

/// Where a table is written: its header, or its key for inline and dotted tables.
fn table_span(top: &dyn TableLike, key: &str) -> Option<Range<usize>> {
    match top.get(key) {
        Some(Item::Table(t)) if !t.is_dotted() => t.span().or_else(|| key_span(top, key)),
        _ => key_span(top, key),
    }
}

/// Returns the model type when it is a known one.
fn model_table(ctx: &mut Ctx<'_>, top: &dyn TableLike, base: &Path, fs: &dyn Fs) -> Option<String> {
    let Some(m) = table(ctx, top, "model") else {
        if top.get("model").is_none() {
            ctx.error(
                MISSING_AT,
                codes::MISSING_KEY,
                "the [model] table is missing".to_string(),
                "add [model] with type, dtype and the model's paths".to_string(),
            );
        }
        return None;
    };
    let header = table_span(top, "model");
    let mut g = Get {
        ctx,
        table: m,
        section: "[model] ",
    };
    let ty = g.str("type");
    let dt = g.str("dtype");
    let tdt = g.str("transformer_dtype");
    let ddt = g.str("diffusion_model_dtype");
    let tsm = g.str("timestep_sample_method");
    if let Some((v, span)) = tsm
        && !matches!(v, "logit_normal" | "uniform")
    {
        ctx.error(
            span,
            codes::INVALID_VALUE,
            format!("[model] timestep_sample_method = '{v}': use 'logit_normal' or 'uniform'"),
            "use timestep_sample_method = 'logit_normal'".to_string(),
        );
    }
    match dt {
        Some((v, span)) => dtype(ctx, "[model] dtype", v, span, &[]),
        None if m.get("dtype").is_none() => ctx.error(
            header.clone(),
            codes::MISSING_KEY,
            "[model] has no `dtype` (required: the base dtype of every model part)".to_string(),
            "add dtype = 'bfloat16' under [model]".to_string(),
        ),
        None => {}
    }
    let known_type = match &ty {
        None => {
            if m.get("type").is_none() {
                ctx.error(
                    header.clone(),
                    codes::MISSING_KEY,
                    "[model] has no `type`".to_string(),
                    format!(
                        "add type = '...' under [model]: one of {}",
                        type_names().join(", ")
                    ),
                );
            }
            None
        }
        Some((v, span)) => {
            if model_path_keys(v).is_none() {
                let names = type_names();
                let best = keys::closest(v, &names).map(|(c, _)| c);
                ctx.error(
                    span.clone(),
                    codes::UNKNOWN_MODEL_TYPE,
                    format!(
                        "unknown model type '{v}'{}",
                        best.map_or(String::new(), |b| format!(" (closest: '{b}')"))
                    ),
                    format!("use one of: {}", names.join(", ")),
                );
                None
            } else {
                Some(v.to_string())
            }
        }
    };
    let hidream = known_type.as_deref() == Some("hidream");
    if let Some((v, span)) = tdt {
        let extra: &[&str] = if hidream { &["nf4"] } else { &[] };
        dtype(ctx, "[model] transformer_dtype", v, span, extra);
    }
    if let Some((v, span)) = ddt {
        dtype(ctx, "[model] diffusion_model_dtype", v, span, &[]);
    }

    // Keys: options, this type's paths; other types' paths are not read.
    let own: Vec<&str> = known_type
        .as_deref()
        .and_then(model_path_keys)
        .map(|ks| ks.iter().map(|p| p.key).collect())
        .unwrap_or_default();
    for (key, _) in m.iter() {
        if MODEL_OPTIONS.contains(&key) || own.contains(&key) {
            continue;
        }
        if is_any_path_key(key) {
            if let Some(t) = &known_type {
                ctx.info(
                    key_span(m, key),
                    codes::UNKNOWN_KEY,
                    format!(
                        "model type '{t}' does not read `{key}` (its paths: {})",
                        own.join(", ")
                    ),
                    format!("remove `{key}`"),
                );
            }
            continue;
        }
        let all_paths: Vec<&str> = model::model_types()
            .iter()
            .flat_map(|(_, ks)| ks.iter().map(|p| p.key))
            .collect();
        let known: [&[&str]; 2] = [
            MODEL_OPTIONS,
            if own.is_empty() { &all_paths } else { &own },
        ];
        keys::unknown_key(ctx, m, key, &known, " in [model]", true);
    }

    if let Some(t) = &known_type {
        model_paths(ctx, m, t, &header, base, fs);
    }
    // merge_adapters: files merged into the weights before training.
    if let Some(item) = m.get("merge_adapters") {
        match item.as_array() {
            Some(a) => {
                for v in a.iter() {
                    match v.as_str() {
                        Some(p) => {
                            check_path(
                                ctx,
                                base,
                                fs,
                                p,
                                v.span(),
                                &PathRule {
                                    label: "[model] merge_adapters",
                                    key: "merge_adapters",
                                    expect: Expect::File,
                                    may_be_missing: false,
                                    hub_check: true,
                                    note: "a LoRA .safetensors to merge",
                                },
                            );
                        }
                        None => ctx.error(
                            v.span(),
                            codes::WRONG_TYPE,
                            "merge_adapters entries must be file paths (strings)".to_string(),
                            "write merge_adapters = ['/path/to/adapter.safetensors']".to_string(),
                        ),
                    }
                }
            }
            None => ctx.wrong_type("[model] merge_adapters", item, "an array of file paths"),
        }
    }
    known_type
}

fn type_names() -> Vec<&'static str> {
    model::model_types().iter().map(|(t, _)| *t).collect()
}

fn model_paths(
    ctx: &mut Ctx<'_>,
    m: &dyn TableLike,
    ty: &str,
    header: &Option<Range<usize>>,
    base: &Path,
    fs: &dyn Fs,
) {
    let keys = model_path_keys(ty).unwrap_or(&[]);
    for pk in keys {
        let Some(item) = m.get(pk.key) else {
            if pk.required {
                ctx.error(
                    header.clone(),
                    codes::MISSING_KEY,
                    format!(
                        "model type '{ty}' needs `{}` ({}: {})",
                        pk.key,
                        pk.expect.describe(),
                        pk.note
                    ),
                    format!("add {} = '/path/...' under [model]", pk.key),
                );
            }
            continue;
        };
        if pk.key == TEXT_ENCODERS {
            text_encoders(ctx, item, base, fs);
            continue;
        }
        let Some(v) = item.as_str() else {
            ctx.wrong_type(&format!("[model] {}", pk.key), item, "a path (string)");
            continue;
        };
        let label = format!("[model] {}", pk.key);
        check_path(
            ctx,
            base,
            fs,
            v,
            item.span(),
            &PathRule {
                label: &label,
                key: pk.key,
                expect: pk.expect,
                may_be_missing: false,
                hub_check: true,
                note: pk.note,
            },
        );
    }
    let alts = alternatives(ty);
    if !alts.is_empty() && !alts.iter().any(|alt| alt.iter().all(|k| m.contains_key(k))) {
        let forms: Vec<String> = alts.iter().map(|a| a.join(" + ")).collect();
        // The alternative the user started on (most keys present; the first on a tie).
        let present = |a: &[&str]| a.iter().filter(|k| m.contains_key(k)).count();
        let best = alts
            .iter()
            .enumerate()
            .max_by_key(|(i, a)| (present(a), std::cmp::Reverse(*i)))
            .map(|(_, a)| *a)
            .unwrap_or(&[]);
        let missing: Vec<&str> = best
            .iter()
            .copied()
            .filter(|k| !m.contains_key(k))
            .collect();
        ctx.error(
            header.clone(),
            codes::MISSING_KEY,
            format!(
                "model type '{ty}' needs {}; missing: {}",
                forms.join(", or "),
                missing.join(", ")
            ),
            format!("add {} under [model]", missing.join(", ")),
        );
    }
    for (key, example) in required_options(ty) {
        if !m.contains_key(key) {
            ctx.error(
                header.clone(),
                codes::MISSING_KEY,
                format!("model type '{ty}' needs `{key}`"),
                format!("add {example}"),
            );
        }
    }
}

fn text_encoders(ctx: &mut Ctx<'_>, item: &Item, base: &Path, fs: &dyn Fs) {
    let tables: Vec<(&dyn TableLike, Option<Range<usize>>)> = match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
        Item::Value(Value::Array(a)) => {
            let mut v = Vec::new();
            for e in a.iter() {
                match e.as_inline_table() {
                    Some(t) => v.push((t as &dyn TableLike, e.span())),
                    None => ctx.error(
                        e.span(),
                        codes::WRONG_TYPE,
                        "each text_encoders entry must be a table {path = '...', type = '...'}"
                            .to_string(),
                        "write text_encoders = [{path = '/path/te.safetensors', type = '...'}]"
                            .to_string(),
                    ),
                }
            }
            v
        }
        _ => {
            ctx.wrong_type(
                "[model] text_encoders",
                item,
                "an array of tables [{path = '...', type = '...'}]",
            );
            return;
        }
    };
    if tables.is_empty() && item.as_array().is_some_and(|a| a.is_empty()) {
        ctx.error(
            item.span(),
            codes::MISSING_KEY,
            "text_encoders is empty".to_string(),
            "add {path = '/path/te.safetensors', type = '...'}".to_string(),
        );
    }
    let rule = PathRule {
        label: "[model] text_encoders path",
        key: "path",
        expect: Expect::File,
        may_be_missing: false,
        hub_check: true,
        note: "ComfyUI text encoder file",
    };
    for (t, span) in tables {
        if !t.contains_key("type") {
            ctx.error(
                span.clone(),
                codes::MISSING_KEY,
                "text_encoders entry without `type`".to_string(),
                "add type = '...' (see docs/supported_models.md for the model's value)".to_string(),
            );
        }
        match (t.get("path"), t.get("paths")) {
            (None, None) => ctx.error(
                span,
                codes::MISSING_KEY,
                "text_encoders entry without `path` (or `paths`)".to_string(),
                "add path = '/path/te.safetensors'".to_string(),
            ),
            (Some(p), _) => match p.as_str() {
                Some(v) => {
                    check_path(ctx, base, fs, v, p.span(), &rule);
                }
                None => ctx.wrong_type("text_encoders path", p, "a path (string)"),
            },
            (None, Some(ps)) => match ps.as_array() {
                Some(a) => {
                    for e in a.iter() {
                        match e.as_str() {
                            Some(v) => {
                                check_path(ctx, base, fs, v, e.span(), &rule);
                            }
                            None => ctx.error(
                                e.span(),
                                codes::WRONG_TYPE,
                                "text_encoders paths entries must be file paths (strings)"
                                    .to_string(),
                                "write paths = ['/path/a.safetensors', '/path/b.safetensors']"
                                    .to_string(),
                            ),
                        }
                    }
                }
                None => ctx.wrong_type("text_encoders paths", ps, "an array of file paths"),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// [adapter], [optimizer], [monitoring]

/// Returns whether an [adapter] table exists (LoRA training).
fn adapter_table(
    ctx: &mut Ctx<'_>,
    top: &dyn TableLike,
    base: &Path,
    fs: &dyn Fs,
    model_type: Option<&str>,
) -> bool {
    let Some(a) = table(ctx, top, "adapter") else {
        return top.get("adapter").is_some();
    };
    let header = table_span(top, "adapter");
    keys::report_unknown(ctx, a, &[ADAPTER_KEYS], " in [adapter]", false);
    let mut g = Get {
        ctx,
        table: a,
        section: "[adapter] ",
    };
    let ty = g.str("type");
    let rank = g.number("rank", 1.0);
    let dt = g.str("dtype");
    let dropout = g.number("dropout", 0.0);
    let init = g.str("init_from_existing");
    match ty {
        None if a.get("type").is_none() => ctx.error(
            header.clone(),
            codes::MISSING_KEY,
            "[adapter] has no `type`".to_string(),
            "add type = 'lora' under [adapter]".to_string(),
        ),
        Some((v, span)) if !matches!(v, "lora" | "lokr") => ctx.error(
            span,
            codes::ADAPTER_TYPE,
            format!("[adapter] type = '{v}': diffusion-pipe supports 'lora' and 'lokr'"),
            format!(
                "use type = '{}'",
                if v.eq_ignore_ascii_case("lokr") {
                    "lokr"
                } else {
                    "lora"
                }
            ),
        ),
        _ => {}
    }
    if rank.is_none() && a.get("rank").is_none() {
        ctx.error(
            header.clone(),
            codes::MISSING_KEY,
            "[adapter] has no `rank` (required)".to_string(),
            "add rank = 32 under [adapter]".to_string(),
        );
    }
    if a.contains_key("alpha") {
        ctx.error(
            key_span(a, "alpha"),
            codes::ADAPTER_ALPHA,
            "[adapter] alpha is not allowed: diffusion-pipe forces alpha = rank and stops with \
             NotImplementedError when it is set"
                .to_string(),
            "remove the alpha line".to_string(),
        );
    }
    if let Some((v, span)) = dt {
        dtype(ctx, "[adapter] dtype", v, span, &[]);
    }
    if let Some((d, span)) = dropout
        && d >= 1.0
    {
        ctx.error(
            span,
            codes::INVALID_VALUE,
            format!("[adapter] dropout = {d}: it is a probability below 1"),
            "use e.g. dropout = 0.05".to_string(),
        );
    }
    if let Some((v, span)) = init {
        init_from_existing(ctx, v, span, base, fs, model_type);
    }
    if let Some(item) = a.get("fuse_adapters") {
        fuse_adapters(ctx, item, base, fs);
    }
    true
}

fn init_from_existing(
    ctx: &mut Ctx<'_>,
    v: &str,
    span: Option<Range<usize>>,
    base: &Path,
    fs: &dyn Fs,
    _model_type: Option<&str>,
) {
    let kind = check_path(
        ctx,
        base,
        fs,
        v,
        span.clone(),
        &PathRule {
            label: "[adapter] init_from_existing",
            key: "init_from_existing",
            expect: Expect::Dir,
            may_be_missing: false,
            hub_check: false,
            note: "a saved LoRA folder (e.g. a run's epoch50) holding exactly one .safetensors",
        },
    );
    if kind != PathKind::Dir {
        return;
    }
    let dir = resolve(base, v);
    match fs.list(&dir) {
        Err(e) => ctx.error(
            span,
            codes::INIT_FROM_EXISTING,
            format!(
                "[adapter] init_from_existing: cannot list {}: {e}",
                dir.display()
            ),
            "make the folder readable".to_string(),
        ),
        Ok(names) => {
            let n = names.iter().filter(|n| n.ends_with(".safetensors")).count();
            if n != 1 {
                ctx.error(
                    span,
                    codes::INIT_FROM_EXISTING,
                    format!(
                        "[adapter] init_from_existing: {} holds {n} .safetensors files; \
                         diffusion-pipe needs exactly one",
                        dir.display()
                    ),
                    "point it at a folder with exactly one .safetensors (a saved epochN or \
                     stepN folder)"
                        .to_string(),
                );
            }
        }
    }
}

fn fuse_adapters(ctx: &mut Ctx<'_>, item: &Item, base: &Path, fs: &dyn Fs) {
    let entries: Vec<(&dyn TableLike, Option<Range<usize>>)> = match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
        Item::Value(Value::Array(a)) => a
            .iter()
            .filter_map(|e| e.as_inline_table().map(|t| (t as &dyn TableLike, e.span())))
            .collect(),
        _ => Vec::new(),
    };
    let count = match item {
        Item::ArrayOfTables(a) => a.len(),
        Item::Value(Value::Array(a)) => a.len(),
        _ => 0,
    };
    if entries.len() != count || count == 0 && !item.is_array() {
        ctx.wrong_type(
            "[adapter] fuse_adapters",
            item,
            "an array of tables [{path = '...', weight = 1.0}]",
        );
        return;
    }
    for (t, span) in entries {
        match t.get("path").map(|p| (p.as_str(), p)) {
            Some((Some(v), p)) => {
                check_path(
                    ctx,
                    base,
                    fs,
                    v,
                    p.span(),
                    &PathRule {
                        label: "[adapter] fuse_adapters path",
                        key: "path",
                        expect: Expect::File,
                        may_be_missing: false,
                        hub_check: false,
                        note: "a LoRA .safetensors",
                    },
                );
            }
            Some((None, p)) => ctx.wrong_type("fuse_adapters path", p, "a path (string)"),
            None => ctx.error(
                span,
                codes::MISSING_KEY,
                "fuse_adapters entry without `path`".to_string(),
                "add path = '/path/lora.safetensors'".to_string(),
            ),
        }
    }
}

fn optimizer_table(ctx: &mut Ctx<'_>, top: &dyn TableLike) {
    let Some(o) = table(ctx, top, "optimizer") else {
        if top.get("optimizer").is_none() {
            ctx.error(
                MISSING_AT,
                codes::MISSING_KEY,
                "the [optimizer] table is missing (diffusion-pipe reads config['optimizer'])"
                    .to_string(),
                "add [optimizer] with type = 'adamw_optimi' and lr = 2e-5".to_string(),
            );
        }
        return;
    };
    let header = table_span(top, "optimizer");
    let mut g = Get {
        ctx,
        table: o,
        section: "[optimizer] ",
    };
    let ty = g.str("type");
    g.number("lr", 0.0);
    g.bool("gradient_release");
    let Some((v, span)) = ty else {
        if o.get("type").is_none() {
            ctx.error(
                header,
                codes::MISSING_KEY,
                "[optimizer] has no `type`".to_string(),
                "add type = 'adamw_optimi' under [optimizer]".to_string(),
            );
        }
        return;
    };
    let lower = v.to_ascii_lowercase();
    if BUILTIN_OPTIMIZERS.contains(&lower.as_str()) {
        return;
    }
    if PYTORCH_OPTIMIZER_CLASSES.contains(&v) {
        ctx.info(
            span,
            codes::OPTIMIZER_TYPE,
            format!(
                "optimizer '{v}' is not a diffusion-pipe built-in: it is loaded from the \
                 pytorch_optimizer package (installed by requirements.txt)"
            ),
            None,
        );
        return;
    }
    if let Some(c) = PYTORCH_OPTIMIZER_CLASSES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(v))
    {
        ctx.error(
            span,
            codes::OPTIMIZER_TYPE,
            format!(
                "optimizer '{v}' is not a built-in, and pytorch_optimizer class names are \
                 case-sensitive: the class is '{c}'"
            ),
            format!("use type = '{c}'"),
        );
        return;
    }
    match keys::closest(&lower, BUILTIN_OPTIMIZERS) {
        Some((c, d)) if keys::is_typo(&lower, c, d) => ctx.warn(
            span,
            codes::OPTIMIZER_TYPE,
            format!(
                "optimizer '{v}' is not a built-in (did you mean '{c}'?); otherwise it must be \
                 the exact, case-sensitive name of a pytorch_optimizer class"
            ),
            format!("use type = '{c}'"),
        ),
        _ => ctx.info(
            span,
            codes::OPTIMIZER_TYPE,
            format!(
                "optimizer '{v}' is not a built-in ({}); diffusion-pipe looks it up as a \
                 pytorch_optimizer class, by its exact, case-sensitive name",
                BUILTIN_OPTIMIZERS.join(", ")
            ),
            None,
        ),
    }
}

fn monitoring_table(ctx: &mut Ctx<'_>, top: &dyn TableLike) {
    let Some(m) = table(ctx, top, "monitoring") else {
        return;
    };
    keys::report_unknown(ctx, m, &[MONITORING_KEYS], " in [monitoring]", false);
    let header = table_span(top, "monitoring");
    let mut g = Get {
        ctx,
        table: m,
        section: "[monitoring] ",
    };
    let enabled = g.bool("enable_wandb");
    for k in &MONITORING_KEYS[1..] {
        g.str(k);
    }
    if enabled.is_some_and(|e| e.0) {
        for k in &MONITORING_KEYS[1..] {
            if !m.contains_key(k) {
                ctx.error(
                    header.clone(),
                    codes::MISSING_KEY,
                    format!("enable_wandb = true needs `{k}` in [monitoring]"),
                    format!("add {k} = '...'"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// eval_datasets

/// An entry: the table (None for a non-table), its span, the raw value (inline arrays).
type EvalEntry<'a> = (
    Option<&'a dyn TableLike>,
    Option<Range<usize>>,
    Option<&'a Value>,
);

fn eval_datasets(
    ctx: &mut Ctx<'_>,
    top: &dyn TableLike,
    base: &Path,
    fs: &dyn Fs,
) -> Vec<(PathBuf, PathKind, Option<Range<usize>>)> {
    let mut out = Vec::new();
    let Some(item) = top.get("eval_datasets") else {
        return out;
    };
    let entries: Vec<EvalEntry<'_>> = match item {
        Item::ArrayOfTables(a) => a
            .iter()
            .map(|t| (Some(t as &dyn TableLike), t.span(), None))
            .collect(),
        Item::Value(Value::Array(a)) => a
            .iter()
            .map(|e| {
                (
                    e.as_inline_table().map(|t| t as &dyn TableLike),
                    e.span(),
                    Some(e),
                )
            })
            .collect(),
        _ => {
            ctx.wrong_type(
                "eval_datasets",
                item,
                "an array of tables [{name = '...', config = '...'}]",
            );
            return out;
        }
    };
    let mut names = HashSet::new();
    for (t, span, raw) in entries {
        let Some(t) = t else {
            let fix = match raw.and_then(|v| v.as_str()) {
                Some(s) => format!("write it as {{name = 'eval', config = '{s}'}}"),
                None => {
                    "write it as {name = 'eval', config = '/path/eval_dataset.toml'}".to_string()
                }
            };
            ctx.error(
                span,
                codes::EVAL_DATASET_ENTRY,
                "eval_datasets entries must be tables {name = ..., config = ...}, not plain values"
                    .to_string(),
                fix,
            );
            continue;
        };
        let mut g = Get {
            ctx,
            table: t,
            section: "eval_datasets ",
        };
        let name = g.str("name");
        let config = g.str("config");
        for (key, present) in [
            ("name", t.contains_key("name")),
            ("config", t.contains_key("config")),
        ] {
            if !present {
                ctx.error(
                    span.clone(),
                    codes::EVAL_DATASET_ENTRY,
                    format!("eval_datasets entry without `{key}`"),
                    "write it as {name = 'eval', config = '/path/eval_dataset.toml'}".to_string(),
                );
            }
        }
        if let Some((n, nspan)) = name
            && !names.insert(n)
        {
            ctx.warn(
                nspan,
                codes::EVAL_DATASET_ENTRY,
                format!("two eval datasets are named '{n}'; the later one replaces the earlier"),
                "give each eval dataset its own name".to_string(),
            );
        }
        if let Some((c, cspan)) = config {
            let kind = check_path(
                ctx,
                base,
                fs,
                c,
                cspan.clone(),
                &PathRule {
                    label: "eval_datasets config",
                    key: "config",
                    expect: Expect::File,
                    may_be_missing: false,
                    hub_check: false,
                    note: "an eval dataset config TOML",
                },
            );
            if !c.trim().is_empty() {
                out.push((resolve(base, c), kind, cspan));
            }
        }
    }
    out
}
