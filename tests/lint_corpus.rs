//! The config linter against diffusion-pipe's own example configs (from `../shared`, skipped with
//! a note where absent), the project's fixtures (one passing and one failing case per rule
//! family, always run), and `dpgui lint` as a script uses it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dpgui::trainer::lint::{
    self, ConfigKind, Diagnostic, RealFs, Severity, codes, config_kind, lint_dataset, lint_main,
};

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/diffusion-pipe-examples"
    ))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint")
}

fn checkout() -> PathBuf {
    fixtures().join("checkout")
}

/// Lints one file as `dpgui lint` does: main or dataset by its content.
fn lint_file(path: &Path, base: &Path) -> (ConfigKind, Vec<Diagnostic>) {
    let text = std::fs::read_to_string(path).unwrap();
    let kind = config_kind(&text);
    let d = match kind {
        ConfigKind::Dataset => lint_dataset(path, &text, base, &RealFs),
        _ => lint_main(path, &text, base, &RealFs, None).diagnostics,
    };
    (kind, d)
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// diffusion-pipe's examples

/// (file, [(the path key as the message names it, "a file" | "a directory", the config the
/// finding is in: None = this one, Some(name) = that file under examples/)])
type Expected = (
    &'static str,
    &'static [(&'static str, &'static str, Option<&'static str>)],
);

const EXPECTED: &[Expected] = &[
    (
        "main_example.toml",
        &[
            ("`[model] transformer_path`", "a file", None),
            ("`[model] vae_path`", "a file", None),
            ("`[model] llm_path`", "a directory", None),
            ("`[model] clip_path`", "a directory", None),
            ("`[[directory]] path`", "a directory", Some("dataset.toml")),
        ],
    ),
    (
        "minimax_h3_example.toml",
        &[
            ("`dataset`", "a file", None),
            ("`[model] diffusion_model`", "a file", None),
            ("`[model] vae`", "a file", None),
            ("`[model] audio_vae`", "a file", None),
            ("`[model] text_encoders path`", "a file", None),
        ],
    ),
    (
        "qwen_image_24gb_vram.toml",
        &[
            ("`dataset`", "a file", None),
            ("`[model] diffusers_path`", "a directory", None),
        ],
    ),
    (
        "wan_14b_min_vram.toml",
        &[
            ("`dataset`", "a file", None),
            ("`[model] ckpt_path`", "a directory", None),
        ],
    ),
    (
        "cosmos_dataset.toml",
        &[("`[[directory]] path`", "a directory", None)],
    ),
    (
        "dataset.toml",
        &[("`[[directory]] path`", "a directory", None)],
    ),
    (
        "flux_kontext_dataset.toml",
        &[
            ("`[[directory]] path`", "a directory", None),
            ("`[[directory]] control_path`", "a directory", None),
        ],
    ),
    (
        "minimax_h3_dataset.toml",
        &[
            ("`[[directory]] path`", "a directory", None),
            ("`[[directory]] path`", "a directory", None),
        ],
    ),
    (
        "recommended_lumina_dataset_config.toml",
        &[("`[[directory]] path`", "a directory", None)],
    ),
];

/// True findings the examples do have (not errors): minimax_h3_example sets no checkpoint.
const ALLOWED_WARNINGS: &[&str] = &[codes::NO_CHECKPOINT];

#[test]
fn diffusion_pipe_examples_lint_without_false_errors() {
    let corpus = corpus_dir();
    if !corpus.is_dir() {
        eprintln!(
            "note: {} is absent; skipping the diffusion-pipe examples (the fixtures still run)",
            corpus.display()
        );
        return;
    }
    // A stand-in checkout whose examples/ is the corpus, so `dataset = 'examples/dataset.toml'`
    // resolves as it does in diffusion-pipe (relative to its working directory).
    let base = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&corpus, base.path().join("examples")).unwrap();
    let examples = base.path().join("examples");
    let files = toml_files(&corpus);
    assert!(files.len() >= 9, "{files:?}");
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let (kind, diags) = lint_file(&file, base.path());
        let want_kind = if name.contains("dataset") {
            ConfigKind::Dataset
        } else {
            ConfigKind::Main
        };
        assert_eq!(kind, want_kind, "{name}");
        let bad: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| match d.severity {
                Severity::Error => d.code != codes::PATH_MISSING,
                Severity::Warning => !ALLOWED_WARNINGS.contains(&d.code),
                Severity::Info => d.code == codes::UNKNOWN_KEY,
            })
            .collect();
        assert!(bad.is_empty(), "{name}: false findings {bad:#?}");
        let missing: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.code == codes::PATH_MISSING)
            .collect();
        let Some((_, expected)) = EXPECTED.iter().find(|(n, _)| *n == name) else {
            println!(
                "note: no expectations for {name}: checked only that its errors are missing paths"
            );
            continue;
        };
        assert_eq!(
            missing.len(),
            expected.len(),
            "{name}: path-missing findings {missing:#?}"
        );
        for (key, what, in_file) in *expected {
            let where_ = match in_file {
                None => file.clone(),
                Some(f) => examples.join(f),
            };
            let hit = missing.iter().any(|d| {
                d.file == where_
                    && d.message.starts_with(key)
                    && d.message.contains(&format!("(expected {what}"))
            });
            assert!(
                hit,
                "{name}: no path-missing for {key} ({what}) in {}: {missing:#?}",
                where_.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The project's own fixtures

/// `# expect: CODE@LINE[:COLUMN]` lines.
fn expectations(text: &str) -> Vec<(String, usize, Option<usize>)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("# expect:"))
        .map(|e| {
            let (code, at) = e.trim().split_once('@').expect("CODE@LINE");
            let (line, col) = match at.split_once(':') {
                Some((l, c)) => (l.parse().unwrap(), Some(c.parse().unwrap())),
                None => (at.parse().unwrap(), None),
            };
            (code.to_string(), line, col)
        })
        .collect()
}

#[test]
fn fixtures_report_exactly_what_they_expect() {
    let base = checkout();
    let files = toml_files(&fixtures());
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let (mut passes, mut fails) = (0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let (_, diags) = lint_file(file, &base);
        let mut got: Vec<String> = diags
            .iter()
            .filter(|d| &d.file == file && d.severity != Severity::Info)
            .map(|d| format!("{}@{}:{}", d.code, d.line, d.column))
            .collect();
        let expected = expectations(&text);
        let mut want: Vec<String> = Vec::new();
        for (code, line, col) in &expected {
            covered.insert(code.clone());
            match col {
                Some(c) => want.push(format!("{code}@{line}:{c}")),
                None => {
                    // Line only: take the column from what was found, if anything matches.
                    let found = got
                        .iter()
                        .find(|g| g.starts_with(&format!("{code}@{line}:")))
                        .cloned();
                    want.push(found.unwrap_or_else(|| format!("{code}@{line}:?")));
                }
            }
        }
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}: {diags:#?}");
        if name.starts_with("pass_") {
            passes += 1;
            assert!(expected.is_empty(), "{name} must expect nothing");
            let elsewhere: Vec<&Diagnostic> = diags
                .iter()
                .filter(|d| d.severity != Severity::Info)
                .collect();
            assert!(elsewhere.is_empty(), "{name}: {elsewhere:#?}");
        } else {
            assert!(name.starts_with("fail_"), "{name}: pass_ or fail_");
            assert!(!expected.is_empty(), "{name} must expect something");
            fails += 1;
        }
    }
    assert!(
        passes >= 4 && fails >= 15,
        "{passes} passing, {fails} failing"
    );
    // Every rule has a failing fixture.
    for code in lint::codes::ALL {
        if *code == codes::DERIVED {
            continue;
        }
        assert!(covered.contains(*code), "no failing fixture for {code}");
    }
}

#[test]
fn derived_values_for_the_passing_main_config() {
    let file = fixtures().join("pass_main_flux.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let r = lint_main(&file, &text, &checkout(), &RealFs, None);
    assert_eq!(
        r.dataset_path,
        Some(checkout().join("configs/dataset.toml"))
    );
    assert_eq!(
        r.eval_dataset_paths,
        vec![checkout().join("configs/eval.toml")]
    );
    assert_eq!(
        r.derived[1],
        "global batch size = 1 per GPU × gradient_accumulation_steps 4 × data-parallel degree: \
         1 GPU → 4, 2 GPUs → 8, 4 GPUs → 16, 8 GPUs → 32"
    );
    let infos = r
        .diagnostics
        .iter()
        .filter(|d| d.code == codes::DERIVED && d.severity == Severity::Info)
        .count();
    assert_eq!(infos, r.derived.len());
}

// ---------------------------------------------------------------------------------------------
// `dpgui lint`

fn dpgui(args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dpgui"))
        .arg("--config")
        .arg(home.path().join("none.toml"))
        .arg("--diffusion-pipe")
        .arg(checkout())
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_json_lists_each_finding_and_exits_1_on_error() {
    let file = fixtures().join("fail_main_sdxl_hub_id.toml");
    let (code, out, err) = dpgui(&["lint", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = v.as_array().unwrap();
    assert!(!list.is_empty());
    for d in list {
        let keys: BTreeSet<&str> = d.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "file", "line", "column", "severity", "code", "message", "fix"
            ])
        );
    }
    let hub = list
        .iter()
        .find(|d| d["code"] == "hub-repo-id")
        .expect("hub-repo-id");
    assert_eq!(hub["file"], file.to_str().unwrap());
    assert_eq!(hub["line"], 11);
    assert_eq!(hub["column"], 19);
    assert_eq!(hub["severity"], "error");
    assert!(
        hub["fix"]
            .as_str()
            .unwrap()
            .starts_with("download it (dpgui fetch stabilityai/stable-diffusion-xl-base-1.0")
    );
    assert!(
        list.iter()
            .any(|d| d["severity"] == "info" && d["fix"].is_null())
    );
}

#[test]
fn cli_text_output_and_exit_codes() {
    let file = fixtures().join("fail_dataset_paths.toml");
    let (code, out, _) = dpgui(&["lint", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:6:8: error[path-missing]: `[[directory]] path`: {}/data/missing does not exist \
             (expected a directory: images/videos and their captions); relative paths are \
             resolved against the diffusion-pipe checkout {} (its working directory), not \
             against this file",
            file.display(),
            checkout().display(),
            checkout().display()
        )
    );
    assert!(out.lines().nth(1).unwrap().starts_with("  fix: "));
    assert!(out.trim_end().ends_with(&format!(
        "3 errors, 0 warnings, 0 notes (dataset config; relative paths resolved against {})",
        checkout().display()
    )));
    // A clean config: exit 0.
    let ok = fixtures().join("pass_main_flux.toml");
    let (code, out, err) = dpgui(&["lint", ok.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 errors, 0 warnings"));
    // Warnings alone: exit 0.
    let warn = fixtures().join("fail_main_no_checkpoint.toml");
    assert_eq!(dpgui(&["lint", warn.to_str().unwrap()]).0, 0);
    // A file that is not there, or not text: a clear message, exit 2.
    let (code, _, err) = dpgui(&["lint", "/nonexistent/x.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.toml: no such file"), "{err}");
    let (code, _, err) = dpgui(&["lint", env!("CARGO_BIN_EXE_dpgui")]);
    assert_eq!(code, 2);
    assert!(err.contains("binary"), "{err}");
}
