//! Config linter benchmark: one re-lint as the Config tab does on every edit.
//!
//! A ~300-line main config in the style of diffusion-pipe's main_example.toml (comments, every
//! common key, [model] with four path keys, [adapter], [optimizer], [monitoring], an eval
//! dataset) and its dataset config with four [[directory]] tables, all paths real (a temp dir),
//! linted with the real filesystem: parse, rules, path checks, reading and linting the dataset
//! and eval configs. Prints the median and p95 of 1,000 `lint_main` calls (after 50 warm-up
//! calls). Target: median under 2 ms.
//!
//! Run with `cargo bench --bench lint` (release profile). No harness: plain `Instant`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use dpgui::trainer::lint::{RealFs, Severity, lint_main};

const RUNS: usize = 1_000;
const WARMUP: usize = 50;

fn comment_block(out: &mut String, topic: &str, lines: usize) {
    for i in 0..lines {
        let _ = writeln!(
            out,
            "# {topic}: a note about this setting, as diffusion-pipe's examples carry ({i})."
        );
    }
}

fn main_config(root: &Path) -> String {
    let r = root.display();
    let mut s = String::new();
    comment_block(&mut s, "Output path for training runs", 3);
    let _ = writeln!(s, "output_dir = '{r}/runs'\n");
    comment_block(&mut s, "Dataset config file", 2);
    let _ = writeln!(s, "dataset = '{r}/dataset.toml'");
    let _ = writeln!(
        s,
        "eval_datasets = [\n    {{name = 'held-out', config = '{r}/eval.toml'}},\n]\n"
    );
    let keys: &[(&str, &str, usize)] = &[
        ("Training length", "epochs = 1000", 4),
        ("Maximum number of steps", "#max_steps = 5000", 2),
        ("Batch size per GPU", "micro_batch_size_per_gpu = 1", 4),
        ("Images batch size", "image_micro_batch_size_per_gpu = 4", 3),
        ("Pipeline parallelism", "pipeline_stages = 1", 4),
        (
            "Gradient accumulation",
            "gradient_accumulation_steps = 4",
            4,
        ),
        ("Grad norm clipping", "gradient_clipping = 1.0", 2),
        ("Learning rate warmup", "warmup_steps = 100", 2),
        ("Force the learning rate", "#force_constant_lr = 1e-5", 3),
        ("LR scheduler", "lr_scheduler = 'linear'", 3),
        ("Block swapping", "blocks_to_swap = 20", 6),
        ("Pseudo Huber loss", "#pseudo_huber_c = 0.5", 2),
        ("Eval frequency", "eval_every_n_epochs = 1", 4),
        (
            "Eval before the first step",
            "eval_before_first_step = true",
            2,
        ),
        ("Eval batch size", "eval_micro_batch_size_per_gpu = 1", 5),
        (
            "Eval images batch size",
            "image_eval_micro_batch_size_per_gpu = 4",
            2,
        ),
        ("Eval GAS", "eval_gradient_accumulation_steps = 1", 2),
        (
            "Block swap during eval",
            "disable_block_swap_for_eval = true",
            4,
        ),
        ("Save frequency", "save_every_n_epochs = 2", 5),
        (
            "Checkpoint frequency",
            "checkpoint_every_n_minutes = 120",
            4,
        ),
        (
            "Activation checkpointing",
            "activation_checkpointing = true",
            4,
        ),
        (
            "Reentrant checkpointing",
            "#reentrant_activation_checkpointing = true",
            3,
        ),
        ("Partitioning", "partition_method = 'parameters'", 6),
        ("Save dtype", "save_dtype = 'bfloat16'", 2),
        ("Caching batch size", "caching_batch_size = 1", 3),
        ("map() processes", "map_num_proc = 8", 4),
        ("torch.compile", "compile = true", 2),
        ("DeepSpeed logging", "steps_per_print = 1", 2),
        ("Video clips", "video_clip_mode = 'single_beginning'", 8),
        ("Tensorboard x axis", "x_axis_examples = false", 3),
    ];
    for (topic, line, n) in keys {
        comment_block(&mut s, topic, *n + 2);
        let _ = writeln!(s, "{line}\n");
    }
    comment_block(&mut s, "HunyuanVideo from the ComfyUI files", 4);
    let _ = writeln!(
        s,
        "[model]\ntype = 'hunyuan-video'\n#ckpt_path = '/home/anon/HunyuanVideo/ckpts'\n\
         transformer_path = '{r}/models/transformer.safetensors'\n\
         vae_path = '{r}/models/vae.safetensors'\n\
         llm_path = '{r}/models/llava-llama-3-8b'\n\
         clip_path = '{r}/models/clip-vit-large-patch14'\n\
         dtype = 'bfloat16'\ntransformer_dtype = 'float8'\n\
         timestep_sample_method = 'logit_normal'\n"
    );
    comment_block(&mut s, "LoRA", 6);
    let _ = writeln!(
        s,
        "[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n\
         #init_from_existing = '/data/runs/something/epoch50'\n"
    );
    comment_block(&mut s, "LoKr alternative", 6);
    comment_block(&mut s, "Optimizer", 8);
    let _ = writeln!(
        s,
        "[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\nbetas = [0.9, 0.99]\n\
         weight_decay = 0.01\neps = 1e-8\n"
    );
    comment_block(&mut s, "Other optimizers", 12);
    let _ = writeln!(
        s,
        "[monitoring]\nenable_wandb = false\nwandb_api_key = ''\nwandb_tracker_name = ''\n\
         wandb_run_name = ''"
    );
    s
}

fn dataset_config(root: &Path) -> String {
    let r = root.display();
    let mut s = String::new();
    comment_block(&mut s, "Resolutions", 6);
    s.push_str("resolutions = [[512, 512], [1280, 720]]\n\n");
    comment_block(&mut s, "Aspect-ratio buckets", 4);
    s.push_str("enable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 7\n\n");
    comment_block(&mut s, "Frame buckets", 4);
    s.push_str("frame_buckets = [1, 33, 65]\n\n");
    for i in 0..4 {
        let _ = writeln!(
            s,
            "[[directory]]\npath = '{r}/data/set{i}'\nmask_path = '{r}/data/masks{i}'\nnum_repeats = {}\n",
            i + 1
        );
    }
    s
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "runs",
        "models/llava-llama-3-8b",
        "models/clip-vit-large-patch14",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..4 {
        std::fs::create_dir_all(root.join(format!("data/set{i}"))).unwrap();
        std::fs::create_dir_all(root.join(format!("data/masks{i}"))).unwrap();
    }
    for f in ["models/transformer.safetensors", "models/vae.safetensors"] {
        std::fs::write(root.join(f), b"").unwrap();
    }
    std::fs::write(root.join("dataset.toml"), dataset_config(root)).unwrap();
    std::fs::write(
        root.join("eval.toml"),
        format!(
            "resolutions = [512]\n\n[[directory]]\npath = '{}/data/set0'\n",
            root.display()
        ),
    )
    .unwrap();
    let text = main_config(root);
    let config = root.join("main.toml");
    std::fs::write(&config, &text).unwrap();
    let lines = text.lines().count();
    let dataset_lines = dataset_config(root).lines().count();

    let report = lint_main(&config, &text, root, &RealFs, None);
    let problems: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
        .collect();
    assert!(
        problems.is_empty(),
        "the benchmark config must be clean: {problems:#?}"
    );

    for _ in 0..WARMUP {
        std::hint::black_box(lint_main(&config, &text, root, &RealFs, None));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = lint_main(&config, &text, root, &RealFs, None);
        times.push(t.elapsed());
        std::hint::black_box(r);
    }
    times.sort();
    let median = times[RUNS / 2];
    let p95 = times[RUNS * 95 / 100];
    println!(
        "lint_main: {lines}-line main config + {dataset_lines}-line dataset config (4 directories) \
         + eval config, real filesystem, {RUNS} runs: median {:.3} ms, p95 {:.3} ms, max {:.3} ms \
         (target: median < 2 ms; {} diagnostics)",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3,
        report.diagnostics.len()
    );
}
