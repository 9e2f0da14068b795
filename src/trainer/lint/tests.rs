//! One failing and one passing case per rule, against an in-memory filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

/// A map of path → file content (directories are implied by the files under them, or added).
#[derive(Default)]
pub(crate) struct MemFs {
    files: BTreeMap<PathBuf, String>,
    dirs: Vec<PathBuf>,
}

impl MemFs {
    pub(crate) fn file(mut self, p: &str, content: &str) -> Self {
        self.files.insert(PathBuf::from(p), content.to_string());
        self
    }
    pub(crate) fn dir(mut self, p: &str) -> Self {
        self.dirs.push(PathBuf::from(p));
        self
    }
}

impl Fs for MemFs {
    fn kind(&self, p: &Path) -> PathKind {
        if self.files.contains_key(p) {
            PathKind::File
        } else if self.dirs.iter().any(|d| d.starts_with(p))
            || self.files.keys().any(|f| f.starts_with(p) && f != p)
        {
            PathKind::Dir
        } else {
            PathKind::Missing
        }
    }
    fn read_to_string(&self, p: &Path) -> std::io::Result<String> {
        self.files
            .get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn list(&self, p: &Path) -> std::io::Result<Vec<String>> {
        let mut out: Vec<String> = self
            .files
            .keys()
            .chain(self.dirs.iter())
            .filter_map(|f| f.strip_prefix(p).ok())
            .filter_map(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

const GOOD_MAIN: &str = "\
output_dir = '/runs'
dataset = 'configs/dataset.toml'
epochs = 10
micro_batch_size_per_gpu = 2
pipeline_stages = 1
gradient_accumulation_steps = 4
save_every_n_epochs = 1
checkpoint_every_n_minutes = 120
activation_checkpointing = true

[model]
type = 'flux'
diffusers_path = '/models/FLUX.1-dev'
transformer_path = '/models/flux.safetensors'
dtype = 'bfloat16'
transformer_dtype = 'float8'

[adapter]
type = 'lora'
rank = 32
dtype = 'bfloat16'

[optimizer]
type = 'adamw_optimi'
lr = 2e-5
";

const GOOD_DATASET: &str = "\
resolutions = [512]
enable_ar_bucket = true
min_ar = 0.5
max_ar = 2.0
num_ar_buckets = 7
frame_buckets = [1, 33]

[[directory]]
path = '/data/images'
num_repeats = 2
";

const BASE: &str = "/dp";

fn fs() -> MemFs {
    MemFs::default()
        .file("/dp/configs/dataset.toml", GOOD_DATASET)
        .file("/models/flux.safetensors", "")
        .file("/models/sd_xl_base.safetensors", "")
        .file("/models/umt5.safetensors", "")
        .dir("/models/FLUX.1-dev")
        .dir("/models/Wan2.1-T2V-1.3B")
        .dir("/data/images")
        .dir("/data/masks")
        .dir("/runs")
        .file("/runs/lora1/adapter_model.safetensors", "")
        .file("/runs/lora1/config.toml", "")
        .file("/runs/two/a.safetensors", "")
        .file("/runs/two/b.safetensors", "")
        .dir("/runs/empty")
}

fn main_report(text: &str) -> LintReport {
    lint_main(
        Path::new("/cfg/main.toml"),
        text,
        Path::new(BASE),
        &fs(),
        None,
    )
}

fn data(text: &str) -> Vec<Diagnostic> {
    lint_dataset(Path::new("/cfg/dataset.toml"), text, Path::new(BASE), &fs())
}

/// Findings other than the derived information.
fn findings(d: &[Diagnostic]) -> Vec<&Diagnostic> {
    d.iter().filter(|d| d.code != codes::DERIVED).collect()
}

fn with_code<'a>(d: &'a [Diagnostic], code: &str) -> Vec<&'a Diagnostic> {
    d.iter().filter(|d| d.code == code).collect()
}

fn assert_clean(d: &[Diagnostic]) {
    let f = findings(d);
    assert!(f.is_empty(), "expected no findings, got {f:#?}");
}

/// The main config with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(GOOD_MAIN.contains(from), "{from}");
    GOOD_MAIN.replacen(from, to, 1)
}

fn edit_data(from: &str, to: &str) -> String {
    assert!(GOOD_DATASET.contains(from), "{from}");
    GOOD_DATASET.replacen(from, to, 1)
}

#[test]
fn good_configs_lint_clean() {
    let r = main_report(GOOD_MAIN);
    assert_clean(&r.diagnostics);
    assert_eq!(
        r.dataset_path,
        Some(PathBuf::from("/dp/configs/dataset.toml"))
    );
    assert!(!r.has_errors());
    assert_eq!(r.derived.len(), 2);
    assert_eq!(with_code(&r.diagnostics, codes::DERIVED).len(), 2);
    assert_clean(&data(GOOD_DATASET));
}

#[test]
fn syntax_errors_point_at_the_exact_place() {
    let text = "epochs = 10\noutput_dir = '/x'\nmicro_batch_size_per_gpu = [1,\n  = 2\n";
    let r = main_report(text);
    assert_eq!(r.diagnostics.len(), 1, "{:#?}", r.diagnostics);
    let d = &r.diagnostics[0];
    assert_eq!((d.code, d.line, d.column), (codes::TOML_SYNTAX, 4, 3));
    assert_eq!(d.severity, Severity::Error);
    // A duplicate key is a syntax error too, at the second key.
    let r = main_report(&edit("epochs = 10\n", "epochs = 10\nepochs = 11\n"));
    let d = &r.diagnostics[0];
    assert_eq!((d.code, d.line, d.column), (codes::TOML_SYNTAX, 4, 1));
    let d = data("resolutions = [512\n[[directory]]\n");
    assert_eq!(d[0].code, codes::TOML_SYNTAX);
    assert_eq!(d[0].line, 2);
}

#[test]
fn a_buffer_that_does_not_parse_still_names_its_dataset() {
    let r = main_report("dataset = 'configs/dataset.toml'\nepochs = = 1\n");
    assert_eq!(
        r.dataset_path,
        Some(PathBuf::from("/dp/configs/dataset.toml"))
    );
    assert_eq!(with_code(&r.diagnostics, codes::TOML_SYNTAX).len(), 1);
}

#[test]
fn required_keys() {
    for (key, line) in [
        ("output_dir = '/runs'\n", "output_dir"),
        ("dataset = 'configs/dataset.toml'\n", "dataset"),
        ("epochs = 10\n", "epochs"),
        ("save_every_n_epochs = 1\n", "save_every_n"),
    ] {
        let r = main_report(&edit(key, ""));
        let m = with_code(&r.diagnostics, codes::MISSING_KEY);
        assert_eq!(m.len(), 1, "{key}: {m:#?}");
        assert!(m[0].message.contains(line), "{}", m[0].message);
        assert_eq!((m[0].line, m[0].column), (1, 1));
        assert!(m[0].fix.is_some());
    }
    // Any one save key will do.
    let r = main_report(&edit("save_every_n_epochs = 1", "save_every_n_steps = 500"));
    assert_clean(&r.diagnostics);
    // [model] type and dtype: reported at the [model] header.
    let r = main_report(&edit("type = 'flux'\n", ""));
    let m = with_code(&r.diagnostics, codes::MISSING_KEY);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].line, 11);
    let r = main_report(&edit(
        "dtype = 'bfloat16'\ntransformer_dtype",
        "transformer_dtype",
    ));
    let m = with_code(&r.diagnostics, codes::MISSING_KEY);
    assert!(m[0].message.contains("dtype"), "{m:#?}");
    // No [model] at all.
    let no_model = GOOD_MAIN.replace(
        "[model]\ntype = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'\ndtype = 'bfloat16'\ntransformer_dtype = 'float8'\n",
        "",
    );
    let r = main_report(&no_model);
    assert!(
        with_code(&r.diagnostics, codes::MISSING_KEY)
            .iter()
            .any(|d| d.message.contains("[model]"))
    );
    // [optimizer] is read unconditionally.
    let no_opt = GOOD_MAIN.replace("[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n", "");
    let r = main_report(&no_opt);
    assert_eq!(with_code(&r.diagnostics, codes::MISSING_KEY).len(), 1);
}

#[test]
fn value_types() {
    let r = main_report(&edit("epochs = 10", "epochs = '10'"));
    let w = with_code(&r.diagnostics, codes::WRONG_TYPE);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].line, w[0].column), (3, 10));
    let r = main_report(&edit(
        "activation_checkpointing = true",
        "activation_checkpointing = 'true'",
    ));
    assert_eq!(with_code(&r.diagnostics, codes::INVALID_VALUE).len(), 1);
    let r = main_report(&edit(
        "activation_checkpointing = true",
        "activation_checkpointing = 'unsloth'",
    ));
    assert_clean(&r.diagnostics);
    let r = main_report(&edit("pipeline_stages = 1", "pipeline_stages = 0"));
    assert_eq!(with_code(&r.diagnostics, codes::INVALID_VALUE).len(), 1);
    let r = main_report(&edit("epochs = 10", "epochs = 10\nlr_scheduler = 'cosin'"));
    let v = with_code(&r.diagnostics, codes::INVALID_VALUE);
    assert_eq!(v.len(), 1);
    assert!(v[0].fix.as_deref().unwrap().contains("cosine"));
    let r = main_report(&edit("epochs = 10", "epochs = 10\nlr_scheduler = 'cosine'"));
    assert_clean(&r.diagnostics);
    let r = main_report(&edit(
        "micro_batch_size_per_gpu = 2",
        "micro_batch_size_per_gpu = [[512, 4], [1024, 1]]",
    ));
    assert_clean(&r.diagnostics);
    let r = main_report(&edit(
        "micro_batch_size_per_gpu = 2",
        "micro_batch_size_per_gpu = [512, 4]",
    ));
    assert_eq!(with_code(&r.diagnostics, codes::INVALID_VALUE).len(), 1);
    let r = main_report(&edit(
        "pipeline_stages = 1",
        "pipeline_stages = 2\npartition_split = [10, 20]",
    ));
    assert_eq!(with_code(&r.diagnostics, codes::INVALID_VALUE).len(), 1);
    let r = main_report(&edit(
        "pipeline_stages = 1",
        "pipeline_stages = 2\npartition_split = [10]",
    ));
    assert_clean(&r.diagnostics);
}

#[test]
fn unknown_keys_name_the_closest_known_key() {
    let r = main_report(&edit("save_every_n_epochs", "save_every_n_epoch"));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_KEY);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].severity, Severity::Warning);
    assert_eq!((u[0].line, u[0].column), (7, 1));
    assert!(u[0].message.contains("save_every_n_epochs"));
    assert_eq!(
        u[0].fix.as_deref(),
        Some("rename it to `save_every_n_epochs`")
    );
    // Far from everything: still a warning, with the closest key named.
    let r = main_report(&edit("epochs = 10", "epochs = 10\nzzzzzz = 1"));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_KEY);
    assert_eq!(u[0].severity, Severity::Warning);
    assert!(u[0].message.contains("closest known key"));
    // [model]: unknown options are information, typos warnings, other types' paths information.
    let r = main_report(&edit(
        "dtype = 'bfloat16'\ntransformer",
        "dtype = 'bfloat16'\nmy_new_option = 3\ntransformer",
    ));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_KEY);
    assert_eq!(u[0].severity, Severity::Info);
    let r = main_report(&edit("transformer_dtype", "transformr_dtype"));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_KEY);
    assert_eq!(u[0].severity, Severity::Warning);
    assert!(u[0].message.contains("transformer_dtype"));
    let r = main_report(&edit(
        "dtype = 'bfloat16'\ntransformer",
        "dtype = 'bfloat16'\nckpt_path = '/x'\ntransformer",
    ));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_KEY);
    assert_eq!(u[0].severity, Severity::Info);
    assert!(u[0].message.contains("does not read"));
    // [adapter] unknown keys warn.
    let r = main_report(&edit("rank = 32", "rank = 32\nrnak = 4"));
    assert_eq!(
        with_code(&r.diagnostics, codes::UNKNOWN_KEY)[0].severity,
        Severity::Warning
    );
    // Every key the examples use is known.
    let r = main_report(&edit(
        "epochs = 10",
        "epochs = 10\nforce_constant_lr = 1e-5\npseudo_huber_c = 0.5\nreentrant_activation_checkpointing = true\ndisable_block_swap_for_eval = true\neval_micro_batch_size_per_gpu = 1\nimage_eval_micro_batch_size_per_gpu = 4\neval_gradient_accumulation_steps = 1\ncompile = true\nx_axis_examples = true\nmap_num_proc = 32\nvideo_clip_mode = 'single_middle'\nsteps_per_print = 1\neval_every_n_epochs = 1\neval_before_first_step = true\nwarmup_steps = 100\ngradient_clipping = 1.0\nsave_dtype = 'bfloat16'\ncaching_batch_size = 1\npartition_method = 'parameters'",
    ));
    assert_clean(&r.diagnostics);
}

#[test]
fn model_types_and_their_paths() {
    let r = main_report(&edit("type = 'flux'", "type = 'flux1'"));
    let u = with_code(&r.diagnostics, codes::UNKNOWN_MODEL_TYPE);
    assert_eq!(u.len(), 1);
    assert!(u[0].message.contains("'flux'"));
    assert_eq!((u[0].line, u[0].column), (12, 8));
    // A missing required path key.
    let r = main_report(&edit("diffusers_path = '/models/FLUX.1-dev'\n", ""));
    let m = with_code(&r.diagnostics, codes::MISSING_KEY);
    assert_eq!(m.len(), 1);
    assert!(m[0].message.contains("diffusers_path"));
    // A path that does not exist: error, with the expectation.
    let r = main_report(&edit("/models/FLUX.1-dev", "/models/FLUX.2"));
    let p = with_code(&r.diagnostics, codes::PATH_MISSING);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].message.contains("expected a directory"),
        "{}",
        p[0].message
    );
    assert_eq!((p[0].line, p[0].column), (13, 18));
    // The wrong kind: a file where a directory is needed, and the reverse.
    let r = main_report(&edit("/models/FLUX.1-dev", "/models/flux.safetensors"));
    let k = with_code(&r.diagnostics, codes::PATH_KIND);
    assert_eq!(k.len(), 1);
    assert!(k[0].message.contains("is a file"));
    let r = main_report(&edit(
        "transformer_path = '/models/flux.safetensors'",
        "transformer_path = '/models/FLUX.1-dev'",
    ));
    let k = with_code(&r.diagnostics, codes::PATH_KIND);
    assert!(k[0].message.contains("is a directory"));
    // wan: ckpt_path a directory, transformer_path file or directory.
    let wan = edit(
        "type = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'",
        "type = 'wan'\nckpt_path = '/models/Wan2.1-T2V-1.3B'\ntransformer_path = '/models/FLUX.1-dev'\nllm_path = '/models/umt5.safetensors'",
    );
    assert_clean(&main_report(&wan).diagnostics);
    let wan_bad = wan.replace(
        "ckpt_path = '/models/Wan2.1-T2V-1.3B'",
        "ckpt_path = '/models/umt5.safetensors'",
    );
    assert_eq!(
        with_code(&main_report(&wan_bad).diagnostics, codes::PATH_KIND).len(),
        1
    );
}

#[test]
fn alternatives_and_required_options() {
    let hv = |paths: &str| {
        edit(
            "type = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'",
            &format!("type = 'hunyuan-video'\n{paths}"),
        )
    };
    let r = main_report(&hv("ckpt_path = '/models/FLUX.1-dev'"));
    assert_clean(&r.diagnostics);
    let r = main_report(&hv(
        "transformer_path = '/models/flux.safetensors'\nvae_path = '/models/flux.safetensors'",
    ));
    let m = with_code(&r.diagnostics, codes::MISSING_KEY);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].message.contains("llm_path, clip_path"),
        "{}",
        m[0].message
    );
    let af = edit(
        "type = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'",
        "type = 'auraflow'\ntransformer_path = '/models/flux.safetensors'\ntext_encoder_path = '/models/umt5.safetensors'\nvae_path = '/models/flux.safetensors'",
    );
    let m = with_code(&main_report(&af).diagnostics, codes::MISSING_KEY)
        .iter()
        .map(|d| d.message.clone())
        .collect::<Vec<_>>();
    assert_eq!(m.len(), 1);
    assert!(m[0].contains("max_sequence_length"));
    assert_clean(
        &main_report(&af.replace(
            "dtype = 'bfloat16'\ntransformer_dtype",
            "max_sequence_length = 768\ndtype = 'bfloat16'\ntransformer_dtype",
        ))
        .diagnostics,
    );
}

#[test]
fn text_encoders_lists() {
    let z = |te: &str| {
        edit(
            "type = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'",
            &format!("type = 'z_image'\ndiffusion_model = '/models/flux.safetensors'\nvae = '/models/flux.safetensors'\n{te}"),
        )
        .replace("transformer_dtype = 'float8'", "diffusion_model_dtype = 'float8'")
    };
    assert_clean(
        &main_report(&z(
            "text_encoders = [{path = '/models/umt5.safetensors', type = 'lumina2'}]",
        ))
        .diagnostics,
    );
    assert_clean(&main_report(&z("text_encoders = [{paths = ['/models/umt5.safetensors', '/models/flux.safetensors'], type = 'x'}]")).diagnostics);
    let r = main_report(&z(
        "text_encoders = [{path = '/models/te.safetensors', type = 'lumina2'}]",
    ));
    let p = with_code(&r.diagnostics, codes::PATH_MISSING);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("expected a file"));
    let r = main_report(&z("text_encoders = ['/models/umt5.safetensors']"));
    assert_eq!(with_code(&r.diagnostics, codes::WRONG_TYPE).len(), 1);
    let r = main_report(&z(""));
    assert!(
        with_code(&r.diagnostics, codes::MISSING_KEY)[0]
            .message
            .contains("text_encoders")
    );
}

#[test]
fn hub_repo_id_where_a_local_path_is_needed() {
    let sdxl = |v: &str| {
        edit(
            "type = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ntransformer_path = '/models/flux.safetensors'",
            &format!("type = 'sdxl'\ncheckpoint_path = '{v}'"),
        )
        .replace("transformer_dtype = 'float8'\n", "")
    };
    let r = main_report(&sdxl("stabilityai/stable-diffusion-xl-base-1.0"));
    let h = with_code(&r.diagnostics, codes::HUB_REPO_ID);
    assert_eq!(h.len(), 1, "{:#?}", r.diagnostics);
    assert_eq!(h[0].severity, Severity::Error);
    assert!(
        h[0].fix
            .as_deref()
            .unwrap()
            .starts_with("download it (dpgui fetch stabilityai/stable-diffusion-xl-base-1.0")
    );
    assert!(with_code(&r.diagnostics, codes::PATH_MISSING).is_empty());
    assert_clean(&main_report(&sdxl("/models/sd_xl_base.safetensors")).diagnostics);
    // A relative `owner/name` that exists under the checkout is a path, not a repo id.
    let fs = fs()
        .file("/dp/models/sdxl.safetensors", "")
        .dir("/dp/local/sdxl");
    let text = sdxl("local/sdxl");
    let r = lint_main(Path::new("/m.toml"), &text, Path::new(BASE), &fs, None);
    assert!(with_code(&r.diagnostics, codes::HUB_REPO_ID).is_empty());
    assert_eq!(with_code(&r.diagnostics, codes::PATH_KIND).len(), 1);
    // Not in dataset paths.
    let d = data(&edit_data("/data/images", "owner/name"));
    assert!(with_code(&d, codes::HUB_REPO_ID).is_empty());
    assert_eq!(with_code(&d, codes::PATH_MISSING).len(), 1);
}

#[test]
fn relative_paths_resolve_against_the_checkout() {
    let r = main_report(&edit(
        "dataset = 'configs/dataset.toml'",
        "dataset = 'configs/nope.toml'",
    ));
    let p = with_code(&r.diagnostics, codes::PATH_MISSING);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("/dp/configs/nope.toml"));
    assert!(p[0].message.contains("diffusion-pipe checkout /dp"));
    let r = main_report(&edit(
        "dataset = 'configs/dataset.toml'",
        "dataset = '~/dataset.toml'",
    ));
    let p = with_code(&r.diagnostics, codes::PATH_MISSING);
    assert!(p[0].fix.as_deref().unwrap().contains("does not expand `~`"));
}

#[test]
fn dtypes() {
    let r = main_report(&edit(
        "dtype = 'bfloat16'\ntransformer",
        "dtype = 'bf16'\ntransformer",
    ));
    let d = with_code(&r.diagnostics, codes::INVALID_DTYPE);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].fix.as_deref(), Some("use 'bfloat16'"));
    let r = main_report(&edit(
        "transformer_dtype = 'float8'",
        "transformer_dtype = 'nf4'",
    ));
    assert_eq!(with_code(&r.diagnostics, codes::INVALID_DTYPE).len(), 1);
    for ok in DTYPES {
        let r = main_report(&edit(
            "transformer_dtype = 'float8'",
            &format!("transformer_dtype = '{ok}'"),
        ));
        assert_clean(&r.diagnostics);
    }
    let r = main_report(&edit("epochs = 10", "epochs = 10\nsave_dtype = 'fp16'"));
    assert_eq!(
        with_code(&r.diagnostics, codes::INVALID_DTYPE)[0]
            .fix
            .as_deref(),
        Some("use 'float16'")
    );
}

#[test]
fn adapter_rules() {
    let r = main_report(&edit("type = 'lora'", "type = 'loha'"));
    assert_eq!(with_code(&r.diagnostics, codes::ADAPTER_TYPE).len(), 1);
    assert_clean(
        &main_report(&edit(
            "type = 'lora'\nrank = 32",
            "type = 'lokr'\nrank = 1e6\ndecompose_factor = 4",
        ))
        .diagnostics,
    );
    let r = main_report(&edit("rank = 32\n", ""));
    assert!(
        with_code(&r.diagnostics, codes::MISSING_KEY)[0]
            .message
            .contains("rank")
    );
    let r = main_report(&edit("rank = 32", "rank = 32\nalpha = 16"));
    let a = with_code(&r.diagnostics, codes::ADAPTER_ALPHA);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].line, a[0].column), (21, 1));
    assert_eq!(a[0].severity, Severity::Error);
}

#[test]
fn init_from_existing_holds_exactly_one_safetensors() {
    let with = |p: &str| {
        main_report(&edit(
            "rank = 32",
            &format!("rank = 32\ninit_from_existing = '{p}'"),
        ))
    };
    assert_clean(&with("/runs/lora1").diagnostics);
    let r = with("/runs/two");
    let i = with_code(&r.diagnostics, codes::INIT_FROM_EXISTING);
    assert_eq!(i.len(), 1);
    assert!(i[0].message.contains("2 .safetensors"));
    assert_eq!(
        with_code(&with("/runs/empty").diagnostics, codes::INIT_FROM_EXISTING).len(),
        1
    );
    assert_eq!(
        with_code(
            &with("/runs/lora1/adapter_model.safetensors").diagnostics,
            codes::PATH_KIND
        )
        .len(),
        1
    );
    assert_eq!(
        with_code(&with("/runs/nope").diagnostics, codes::PATH_MISSING).len(),
        1
    );
}

#[test]
fn block_swap_needs_one_stage_and_an_adapter() {
    let r = main_report(&edit("epochs = 10", "epochs = 10\nblocks_to_swap = 20"));
    assert_clean(&r.diagnostics);
    let r = main_report(&edit(
        "pipeline_stages = 1",
        "pipeline_stages = 2\nblocks_to_swap = 20",
    ));
    let b = with_code(&r.diagnostics, codes::BLOCK_SWAP);
    assert_eq!(b.len(), 1);
    assert!(b[0].message.contains("pipeline_stages = 1"));
    let no_adapter = GOOD_MAIN
        .replace(
            "[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n",
            "",
        )
        .replace("epochs = 10", "epochs = 10\nblocks_to_swap = 20");
    let b = with_code(&main_report(&no_adapter).diagnostics, codes::BLOCK_SWAP).len();
    assert_eq!(b, 1);
    // Without block swap, no [adapter] is a full fine-tune: fine.
    let fft = GOOD_MAIN.replace(
        "[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n",
        "",
    );
    assert_clean(&main_report(&fft).diagnostics);
}

#[test]
fn eval_datasets_are_tables_and_are_linted() {
    let fs = fs().file(
        "/dp/eval.toml",
        "resolutions = [512]\n[[directory]]\npath = '/data/nope'\n",
    );
    let lint = |t: &str| lint_main(Path::new("/m.toml"), t, Path::new(BASE), &fs, None);
    let r = lint(&edit(
        "epochs = 10",
        "epochs = 10\neval_datasets = [{name = 'e', config = 'eval.toml'}]",
    ));
    assert_eq!(r.eval_dataset_paths, vec![PathBuf::from("/dp/eval.toml")]);
    let f = findings(&r.diagnostics);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].file, PathBuf::from("/dp/eval.toml"));
    assert_eq!(f[0].code, codes::PATH_MISSING);
    let r = lint(&edit(
        "epochs = 10",
        "epochs = 10\neval_datasets = ['eval.toml']",
    ));
    let e = with_code(&r.diagnostics, codes::EVAL_DATASET_ENTRY);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].fix
            .as_deref()
            .unwrap()
            .contains("config = 'eval.toml'")
    );
    let r = lint(&edit(
        "epochs = 10",
        "epochs = 10\neval_datasets = [{config = 'eval.toml'}]",
    ));
    assert_eq!(
        with_code(&r.diagnostics, codes::EVAL_DATASET_ENTRY).len(),
        1
    );
    let r = lint(&edit(
        "epochs = 10",
        "epochs = 10\neval_datasets = [{name = 'a', config = 'eval.toml'}, {name = 'a', config = 'eval.toml'}]",
    ));
    assert_eq!(
        with_code(&r.diagnostics, codes::EVAL_DATASET_ENTRY)[0].severity,
        Severity::Warning
    );
    let r = lint(&format!(
        "{GOOD_MAIN}\n[[eval_datasets]]\nname = 'x'\nconfig = 'configs/dataset.toml'\n"
    ));
    assert_clean(&r.diagnostics);
}

#[test]
fn checkpoints() {
    let r = main_report(&edit(
        "checkpoint_every_n_minutes = 120",
        "checkpoint_every_n_minutes = 120\ncheckpoint_every_n_epochs = 1",
    ));
    let c = with_code(&r.diagnostics, codes::CHECKPOINT_CONFLICT);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].severity, Severity::Warning);
    let r = main_report(&edit("checkpoint_every_n_minutes = 120\n", ""));
    let n = with_code(&r.diagnostics, codes::NO_CHECKPOINT);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].severity, Severity::Warning);
    assert!(n[0].message.contains("no resumable checkpoint"));
    assert_clean(
        &main_report(&edit(
            "checkpoint_every_n_minutes = 120",
            "checkpoint_every_n_epochs = 1",
        ))
        .diagnostics,
    );
}

#[test]
fn optimizer_types() {
    let opt = |t: &str| main_report(&edit("type = 'adamw_optimi'", &format!("type = '{t}'")));
    for ok in ["AdamW8bitKahan", "adamw", "ADAMW_OPTIMI", "automagic"] {
        assert_clean(&opt(ok).diagnostics);
    }
    let r = opt("prodigy");
    let o = with_code(&r.diagnostics, codes::OPTIMIZER_TYPE);
    assert_eq!(o[0].severity, Severity::Error);
    assert_eq!(o[0].fix.as_deref(), Some("use type = 'Prodigy'"));
    let o = opt("Prodigy");
    assert_eq!(
        with_code(&o.diagnostics, codes::OPTIMIZER_TYPE)[0].severity,
        Severity::Info
    );
    let o = opt("adamw_optim");
    let w = with_code(&o.diagnostics, codes::OPTIMIZER_TYPE);
    assert_eq!(w[0].severity, Severity::Warning);
    assert!(w[0].message.contains("adamw_optimi"));
    let o = opt("SomethingFromPytorchOptimizer");
    let i = with_code(&o.diagnostics, codes::OPTIMIZER_TYPE);
    assert_eq!(i[0].severity, Severity::Info);
    assert!(i[0].message.contains("case-sensitive"));
}

#[test]
fn derived_values() {
    let r = main_report(&edit("pipeline_stages = 1", "pipeline_stages = 2"));
    assert_eq!(
        r.derived[0],
        "data-parallel degree = GPUs / pipeline_stages (2; the GPU count must be a multiple of 2): 2 GPUs → 1, 4 GPUs → 2, 8 GPUs → 4, 16 GPUs → 8"
    );
    assert_eq!(
        r.derived[1],
        "global batch size = 2 per GPU × gradient_accumulation_steps 4 × data-parallel degree: 2 GPUs → 8, 4 GPUs → 16, 8 GPUs → 32, 16 GPUs → 64"
    );
    let d = with_code(&r.diagnostics, codes::DERIVED);
    assert_eq!(d[0].severity, Severity::Info);
    assert_eq!(d[0].line, 4);
}

#[test]
fn monitoring_needs_its_keys_when_enabled() {
    let r = main_report(&format!(
        "{GOOD_MAIN}\n[monitoring]\nenable_wandb = true\nwandb_api_key = 'k'\n"
    ));
    assert_eq!(with_code(&r.diagnostics, codes::MISSING_KEY).len(), 2);
    let r = main_report(&format!(
        "{GOOD_MAIN}\n[monitoring]\nenable_wandb = false\nwandb_api_key = ''\n"
    ));
    assert_clean(&r.diagnostics);
}

// --- Dataset configs

#[test]
fn dataset_configs_are_linted_with_the_main_config() {
    let r = main_report(GOOD_MAIN);
    assert_clean(&r.diagnostics);
    // The editor's unsaved dataset buffer wins over the file.
    let r = lint_main(
        Path::new("/cfg/main.toml"),
        GOOD_MAIN,
        Path::new(BASE),
        &fs(),
        Some("resolutions = [512]\n[[directory]]\npath = '/data/gone'\n"),
    );
    let p = with_code(&r.diagnostics, codes::PATH_MISSING);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].file, PathBuf::from("/dp/configs/dataset.toml"));
    assert_eq!(p[0].line, 3);
    // Sorted by file, line, column.
    let mut sorted = r.diagnostics.clone();
    sort(&mut sorted);
    assert_eq!(sorted, r.diagnostics);
    // A dataset file that is not text.
    struct Unreadable(MemFs);
    impl Fs for Unreadable {
        fn kind(&self, p: &Path) -> PathKind {
            self.0.kind(p)
        }
        fn read_to_string(&self, _: &Path) -> std::io::Result<String> {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        }
        fn list(&self, p: &Path) -> std::io::Result<Vec<String>> {
            self.0.list(p)
        }
    }
    let r = lint_main(
        Path::new("/m.toml"),
        GOOD_MAIN,
        Path::new(BASE),
        &Unreadable(fs()),
        None,
    );
    let u = with_code(&r.diagnostics, codes::FILE_UNREADABLE);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].line, 2);
}

#[test]
fn dataset_directories_and_paths() {
    let d = data(&edit_data("/data/images", "/data/none"));
    let p = with_code(&d, codes::PATH_MISSING);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("expected a directory"));
    assert_eq!((p[0].line, p[0].column), (9, 8));
    let d = data(&edit_data("/data/images", "/models/flux.safetensors"));
    assert_eq!(with_code(&d, codes::PATH_KIND).len(), 1);
    let d = data(&edit_data(
        "num_repeats = 2",
        "num_repeats = 2\nmask_path = '/data/nomask'\ncontrol_path = '/data/nocontrol'",
    ));
    assert_eq!(with_code(&d, codes::PATH_MISSING).len(), 2);
    let d = data(&edit_data(
        "num_repeats = 2",
        "num_repeats = 2\nmask_path = '/data/masks'\ncontrol_path = '/data/masks'",
    ));
    assert_clean(&d);
    let d = data("resolutions = [512]\n");
    assert!(
        with_code(&d, codes::MISSING_KEY)[0]
            .message
            .contains("[[directory]]")
    );
    let d = data(&edit_data("path = '/data/images'\n", ""));
    assert!(
        with_code(&d, codes::MISSING_KEY)[0]
            .message
            .contains("without `path`")
    );
}

#[test]
fn dataset_num_repeats_must_be_positive() {
    let d = data(&edit_data("num_repeats = 2", "num_repeats = 0"));
    let v = with_code(&d, codes::INVALID_VALUE);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].line, v[0].column), (10, 15));
    let d = data(&edit_data("num_repeats = 2", "num_repeats = 0.5"));
    assert_clean(&d);
}

#[test]
fn dataset_resolutions() {
    let d = data(&edit_data(
        "resolutions = [512]",
        "resolutions = [256, 512, 768, 1024]",
    ));
    let t = with_code(&d, codes::TOO_MANY_RESOLUTIONS);
    assert_eq!(t.len(), 1);
    assert!(t[0].message.contains("--i_know_what_i_am_doing"));
    assert_clean(&data(&edit_data(
        "resolutions = [512]",
        "resolutions = [[512, 512], [1280, 720], [1024, 1024]]",
    )));
    let d = data(&edit_data(
        "resolutions = [512]",
        "resolutions = [512, [1280, 720]]",
    ));
    assert_eq!(with_code(&d, codes::MIXED_ARRAY).len(), 1);
    let d = data(&edit_data("resolutions = [512]\n", ""));
    assert!(
        with_code(&d, codes::MISSING_KEY)[0]
            .message
            .contains("resolutions")
    );
    let d = data(&edit_data(
        "resolutions = [512]",
        "resolutions = [[512, 512], [1280, 720, 3]]",
    ));
    assert_eq!(with_code(&d, codes::INVALID_VALUE).len(), 1);
    // Only per directory: diffusion-pipe still looks the top-level one up first.
    let per_dir = "[[directory]]\npath = '/tmp'\nresolutions = [512]\n";
    let d = data(per_dir);
    let m = with_code(&d, codes::MISSING_KEY);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].message.contains("top-level `resolutions`"), "{m:?}");
    let both = format!("resolutions = [256]\n{per_dir}");
    let d = data(&both);
    assert!(with_code(&d, codes::MISSING_KEY).is_empty());
}

#[test]
fn dataset_ar_buckets_are_consistent() {
    // enable_ar_bucket without the range
    let d = data(&edit_data("min_ar = 0.5\n", ""));
    let a = with_code(&d, codes::AR_BUCKETS);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].severity, Severity::Error);
    assert!(a[0].message.contains("missing: min_ar"));
    // ar_buckets replaces the range
    let only_list = GOOD_DATASET.replace(
        "min_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 7\n",
        "ar_buckets = [[512, 512], [448, 576]]\n",
    );
    assert_clean(&data(&only_list));
    let both = edit_data("min_ar = 0.5", "min_ar = 0.5\nar_buckets = [1.0, 1.5]");
    let a = with_code(&data(&both), codes::AR_BUCKETS).len();
    assert_eq!(a, 3);
    // Range keys without enable_ar_bucket are ignored
    let d = data(&edit_data(
        "enable_ar_bucket = true",
        "enable_ar_bucket = false",
    ));
    let a = with_code(&d, codes::AR_BUCKETS);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].severity, Severity::Warning);
    // Mixed scalars and pairs
    let d = data(&only_list.replace("[[512, 512], [448, 576]]", "[1.0, [448, 576]]"));
    assert_eq!(with_code(&d, codes::MIXED_ARRAY).len(), 1);
    // Directory-level override completes the top level
    let per_dir = "resolutions = [512]\nenable_ar_bucket = true\n[[directory]]\npath = '/data/images'\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n";
    assert_clean(&data(per_dir));
}

#[test]
fn dataset_frame_and_size_buckets() {
    let d = data(&edit_data(
        "frame_buckets = [1, 33]",
        "frame_buckets = [1, 0, 33.5]",
    ));
    assert_eq!(with_code(&d, codes::FRAME_BUCKETS).len(), 2);
    assert_clean(&data(&edit_data(
        "frame_buckets = [1, 33]",
        "frame_buckets = [33, 65]",
    )));
    let cosmos = "size_buckets = [[960, 960, 1], [704, 1280, 1]]\n[[directory]]\npath = '/data/images'\nnum_repeats = 10\n";
    assert_clean(&data(cosmos));
    let d = data(&cosmos.replace("[704, 1280, 1]", "[704, 1280]"));
    assert_eq!(with_code(&d, codes::SIZE_BUCKETS).len(), 1);
    let d = data(&format!("resolutions = [512]\n{cosmos}"));
    let s = with_code(&d, codes::SIZE_BUCKETS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].severity, Severity::Warning);
}

#[test]
fn dataset_unknown_keys() {
    let d = data(&edit_data("frame_buckets", "frame_bucket"));
    let u = with_code(&d, codes::UNKNOWN_KEY);
    assert_eq!(u.len(), 1);
    assert!(u[0].message.contains("frame_buckets"));
    let d = data(&edit_data("num_repeats = 2", "num_repeat = 2"));
    assert!(
        with_code(&d, codes::UNKNOWN_KEY)[0]
            .message
            .contains("num_repeats")
    );
    let d = data(&edit_data(
        "num_repeats = 2",
        "num_repeats = 2\ncaption_prefix = 'x '\nshuffle_tags = true\ncache_shuffle_num = 3\ncache_shuffle_delimiter = ', '\nskip_empty_caption = false",
    ));
    assert_clean(&d);
}

#[test]
fn kinds_of_config() {
    assert_eq!(config_kind(GOOD_MAIN), ConfigKind::Main);
    assert_eq!(config_kind(GOOD_DATASET), ConfigKind::Dataset);
    assert_eq!(config_kind("# nothing\n"), ConfigKind::Unknown);
    assert_eq!(
        config_kind("[[directory]]\npath = '/x'\n"),
        ConfigKind::Dataset
    );
    assert_eq!(config_kind("output_dir = 'x'\n[model\n"), ConfigKind::Main);
}

#[test]
fn every_code_is_listed() {
    let mut all: Vec<&str> = codes::ALL.to_vec();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), codes::ALL.len());
}
