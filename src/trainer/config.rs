//! The facts a launch needs from a diffusion-pipe main config: parse errors with their position,
//! the required keys, and the values that shape the run (output_dir, epochs, pipeline_stages...).
//! The full rule set belongs to the config linter; this is the part the launcher cannot do without.

use std::path::{Path, PathBuf};

/// What a launch reads from the main config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MainConfig {
    pub output_dir: Option<String>,
    pub dataset: Option<String>,
    pub epochs: Option<u64>,
    pub max_steps: Option<u64>,
    pub model_type: Option<String>,
    pub pipeline_stages: u64,
    pub gradient_accumulation_steps: u64,
    /// `micro_batch_size_per_gpu` when it is a plain integer.
    pub micro_batch: Option<u64>,
}

/// A problem that stops a launch (or is worth a warning before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub error: bool,
    /// 1-based, when the issue has a place in the file.
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

const SAVE_KEYS: [&str; 3] = [
    "save_every_n_epochs",
    "save_every_n_steps",
    "save_every_n_examples",
];

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses `text`. A syntax error comes back as the single issue, with line and column.
pub fn read_main(text: &str) -> (MainConfig, Vec<ConfigIssue>) {
    let mut issues = Vec::new();
    let doc: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            let what = e.message().trim().to_string();
            issues.push(ConfigIssue {
                error: true,
                line: (line > 0).then_some(line),
                message: format!("TOML syntax error at line {line}, column {col}: {what}"),
                fix: "correct the syntax at that position".into(),
            });
            return (MainConfig::default(), issues);
        }
    };
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|i| i + 1)
    };
    let mut missing = |key: &str, fix: &str| {
        issues.push(ConfigIssue {
            error: true,
            line: None,
            message: format!("required key `{key}` is missing"),
            fix: fix.into(),
        })
    };
    let string = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let uint = |v: Option<&toml::Value>| v.and_then(|v| v.as_integer()).map(|i| i.max(0) as u64);

    let mut c = MainConfig {
        output_dir: string("output_dir"),
        dataset: string("dataset"),
        epochs: uint(doc.get("epochs")),
        max_steps: uint(doc.get("max_steps")),
        model_type: None,
        pipeline_stages: uint(doc.get("pipeline_stages")).unwrap_or(1),
        gradient_accumulation_steps: uint(doc.get("gradient_accumulation_steps")).unwrap_or(1),
        micro_batch: uint(doc.get("micro_batch_size_per_gpu")),
    };
    if c.output_dir.is_none() {
        missing(
            "output_dir",
            "add output_dir = '/path/to/training_output' (where runs are written)",
        );
    }
    if c.dataset.is_none() {
        missing(
            "dataset",
            "add dataset = 'path/to/dataset.toml' (the dataset config)",
        );
    }
    if c.epochs.is_none() {
        missing("epochs", "add epochs = 100 (or the number you want)");
    }
    if !SAVE_KEYS.iter().any(|k| doc.contains_key(*k)) {
        missing(
            "save_every_n_epochs",
            "add one of save_every_n_epochs, save_every_n_steps or save_every_n_examples",
        );
    }
    match doc.get("model").and_then(|m| m.as_table()) {
        None => missing(
            "[model]",
            "add a [model] table with type and dtype (e.g. type = 'sdxl', dtype = 'bfloat16')",
        ),
        Some(m) => {
            c.model_type = m.get("type").and_then(|v| v.as_str()).map(str::to_string);
            if c.model_type.is_none() {
                missing("[model] type", "add type = '<model type>' under [model]");
            }
            if !m.contains_key("dtype") {
                missing("[model] dtype", "add dtype = 'bfloat16' under [model]");
            }
        }
    }
    if doc
        .get("pipeline_stages")
        .is_some_and(|v| v.as_integer().is_none_or(|i| i < 1))
    {
        issues.push(ConfigIssue {
            error: true,
            line: line_of("pipeline_stages"),
            message: "pipeline_stages must be a positive integer".into(),
            fix: "set pipeline_stages = 1 (or the number of pipeline stages)".into(),
        });
        c.pipeline_stages = 1;
    }
    (c, issues)
}

/// Reads and parses a main config file.
pub fn read_main_file(path: &Path) -> Result<(MainConfig, Vec<ConfigIssue>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    Ok(read_main(&text))
}

/// `output_dir` as diffusion-pipe resolves it: relative paths are relative to its working
/// directory, the checkout root.
pub fn resolve_output_dir(c: &MainConfig, checkout: &Path) -> Option<PathBuf> {
    c.output_dir.as_ref().map(|d| {
        // diffusion-pipe does not expand `~`; neither do we, to predict where it writes.
        let p = PathBuf::from(d);
        if p.is_absolute() { p } else { checkout.join(p) }
    })
}

/// Whether the GPU count fits the pipeline: diffusion-pipe requires it to be divisible.
pub fn stages_fit(gpus: usize, stages: u64) -> bool {
    stages >= 1 && (gpus as u64).is_multiple_of(stages) && gpus > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
output_dir = '/out'
dataset = 'examples/dataset.toml'
epochs = 10
max_steps = 500
save_every_n_epochs = 2
pipeline_stages = 2
micro_batch_size_per_gpu = 4

[model]
type = 'sdxl'
dtype = 'bfloat16'
"#;

    #[test]
    fn reads_the_values_a_launch_needs() {
        let (c, issues) = read_main(OK);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(c.output_dir.as_deref(), Some("/out"));
        assert_eq!(c.epochs, Some(10));
        assert_eq!(c.max_steps, Some(500));
        assert_eq!(c.model_type.as_deref(), Some("sdxl"));
        assert_eq!(c.pipeline_stages, 2);
        assert_eq!(c.micro_batch, Some(4));
        assert_eq!(c.gradient_accumulation_steps, 1);
    }

    #[test]
    fn each_required_key_is_reported() {
        for (key, needle) in [
            ("output_dir", "`output_dir`"),
            ("dataset", "`dataset`"),
            ("epochs", "`epochs`"),
            ("save_every_n_epochs", "save_every_n_epochs"),
            ("dtype", "[model] dtype"),
        ] {
            let text: String = OK
                .lines()
                .filter(|l| !l.starts_with(key))
                .map(|l| format!("{l}\n"))
                .collect();
            let (_, issues) = read_main(&text);
            assert!(
                issues.iter().any(|i| i.error && i.message.contains(needle)),
                "{key}: {issues:?}"
            );
        }
        let (_, issues) = read_main("output_dir='/o'\n");
        assert!(issues.iter().any(|i| i.message.contains("[model]")));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let (_, issues) = read_main("epochs = 3\noutput_dir = \n");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].line, Some(2));
        assert!(
            issues[0].message.contains("line 2"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn pipeline_stages_must_divide_the_gpus() {
        assert!(stages_fit(4, 2));
        assert!(!stages_fit(3, 2));
        assert!(!stages_fit(0, 1));
        let (_, issues) = read_main(&OK.replace("pipeline_stages = 2", "pipeline_stages = 0"));
        assert!(issues.iter().any(|i| i.message.contains("pipeline_stages")));
    }

    #[test]
    fn relative_output_dirs_resolve_against_the_checkout() {
        let mut c = MainConfig {
            output_dir: Some("runs/a".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_output_dir(&c, Path::new("/dp")),
            Some(PathBuf::from("/dp/runs/a"))
        );
        c.output_dir = Some("/abs".into());
        assert_eq!(
            resolve_output_dir(&c, Path::new("/dp")),
            Some(PathBuf::from("/abs"))
        );
    }
}
