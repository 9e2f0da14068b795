//! The values a launch needs from a diffusion-pipe main config (output_dir, epochs,
//! pipeline_stages...). Whether the config is right is the linter's question (`trainer::lint`).

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

/// Reads the values; anything unreadable is left at its default. The rules (required keys,
/// syntax errors with their position, wrong types) are the linter's job (`trainer::lint`), which
/// the launch pre-flight runs on the same text.
pub fn read_main(text: &str) -> MainConfig {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return MainConfig::default();
    };
    let string = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let uint = |v: Option<&toml::Value>| v.and_then(|v| v.as_integer()).map(|i| i.max(0) as u64);
    MainConfig {
        output_dir: string("output_dir"),
        dataset: string("dataset"),
        epochs: uint(doc.get("epochs")),
        max_steps: uint(doc.get("max_steps")),
        model_type: doc
            .get("model")
            .and_then(|m| m.get("type"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        // Invalid (0, negative, not a number) counts as 1: the linter reports it.
        pipeline_stages: uint(doc.get("pipeline_stages"))
            .filter(|&n| n >= 1)
            .unwrap_or(1),
        gradient_accumulation_steps: uint(doc.get("gradient_accumulation_steps")).unwrap_or(1),
        micro_batch: uint(doc.get("micro_batch_size_per_gpu")),
    }
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
        let c = read_main(OK);
        assert_eq!(c.output_dir.as_deref(), Some("/out"));
        assert_eq!(c.epochs, Some(10));
        assert_eq!(c.max_steps, Some(500));
        assert_eq!(c.model_type.as_deref(), Some("sdxl"));
        assert_eq!(c.pipeline_stages, 2);
        assert_eq!(c.micro_batch, Some(4));
        assert_eq!(c.gradient_accumulation_steps, 1);
    }

    #[test]
    fn pipeline_stages_must_divide_the_gpus() {
        assert!(stages_fit(4, 2));
        assert!(!stages_fit(3, 2));
        assert!(!stages_fit(0, 1));
        let c = read_main(&OK.replace("pipeline_stages = 2", "pipeline_stages = 0"));
        assert_eq!(
            c.pipeline_stages, 1,
            "invalid: the linter reports it, the launch assumes 1"
        );
        assert_eq!(read_main("not = = toml"), MainConfig::default());
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
