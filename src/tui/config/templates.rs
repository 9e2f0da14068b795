//! New configs from a template: one main config per model type, with that model's path keys
//! (from the linter's table, so the two never disagree) and defaults that train a LoRA on one
//! GPU, plus a companion dataset config. The text is dpgui's own (templates/*.toml).

use std::path::Path;

use crate::trainer::lint::{self, Expect};

const MAIN: &str = include_str!("templates/main.toml");
const DATASET: &str = include_str!("templates/dataset.toml");

/// Model types that train on video (their dataset template gets frame buckets).
const VIDEO: &[&str] = &[
    "ltx-video",
    "hunyuan-video",
    "cosmos",
    "wan",
    "hunyuan_video_15",
    "ltx2",
    "minimax_h3",
];

/// The model types a template can be made for, in the linter's order.
pub fn model_names() -> Vec<&'static str> {
    lint::model_types().iter().map(|(t, _)| *t).collect()
}

fn describe(e: Expect) -> &'static str {
    match e {
        Expect::File => "file",
        Expect::Dir => "directory",
        Expect::FileOrDir => "file or directory",
    }
}

/// The `[model]` lines for the path keys of `model`: required keys (or the first complete
/// alternative) as empty strings to fill in, optional ones commented out.
fn model_keys(model: &str) -> String {
    let Some((_, keys)) = lint::model_types().iter().find(|(t, _)| *t == model) else {
        return String::new();
    };
    let first_alt: &[&str] = lint::alternatives(model).first().copied().unwrap_or(&[]);
    let mut out = String::new();
    for pk in keys.iter() {
        let wanted = pk.required || first_alt.contains(&pk.key);
        let need = if wanted { "" } else { "optional " };
        out.push_str(&format!("# {need}{}: {}\n", describe(pk.expect), pk.note));
        let line = if pk.key == lint::TEXT_ENCODERS {
            "text_encoders = [{ path = '', type = '' }]  # type: the encoder type diffusion-pipe's docs name for this model".to_string()
        } else {
            format!("{} = ''", pk.key)
        };
        if wanted {
            out.push_str(&line);
        } else {
            out.push_str("# ");
            out.push_str(&line);
        }
        out.push('\n');
    }
    if model == "auraflow" {
        out.push_str("# 768 for Pony V7, 256 for base AuraFlow\nmax_sequence_length = 768\n");
    }
    out
}

/// Escapes a path for a TOML literal string (paths with a quote get a basic string).
fn toml_str(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains('\'') || s.chars().any(char::is_control) {
        toml_edit::Value::from(s).to_string().trim().to_string()
    } else {
        format!("'{s}'")
    }
}

/// The main config for `model`, training on `dataset` into `output_dir`.
pub fn main_text(model: &str, output_dir: &Path, dataset: &Path) -> String {
    MAIN.replace("{{MODEL}}", model)
        .replace("'{{OUTPUT_DIR}}'", &toml_str(output_dir))
        .replace("'{{DATASET}}'", &toml_str(dataset))
        .replace("{{MODEL_KEYS}}", &model_keys(model))
}

/// The dataset config that goes with a main config named `name`.
pub fn dataset_text(name: &str, model: &str) -> String {
    let frames = if VIDEO.contains(&model) {
        "\n# Video lengths to train at, in frames (1 = still images; 1 is always added).\nframe_buckets = [1, 33]\n"
    } else {
        ""
    };
    DATASET
        .replace("{{NAME}}", name)
        .replace("{{RESOLUTION}}", "512")
        .replace("{{FRAMES}}", frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_type_has_a_template_that_parses_and_names_its_paths() {
        assert!(model_names().len() >= 20);
        for model in model_names() {
            let text = main_text(
                model,
                Path::new("/w/runs/x"),
                Path::new("/w/x-dataset.toml"),
            );
            let t: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{model}: {e}"));
            assert_eq!(t["model"]["type"].as_str(), Some(model));
            assert_eq!(t["dataset"].as_str(), Some("/w/x-dataset.toml"));
            assert_eq!(t["output_dir"].as_str(), Some("/w/runs/x"));
            assert_eq!(t["micro_batch_size_per_gpu"].as_integer(), Some(1));
            assert_eq!(t["adapter"]["rank"].as_integer(), Some(32));
            let (_, keys) = lint::model_types()
                .iter()
                .find(|(t, _)| *t == model)
                .unwrap();
            for pk in keys.iter() {
                assert!(
                    text.contains(pk.key),
                    "{model}: {} not in the template",
                    pk.key
                );
            }
            assert!(
                keys.iter().any(|pk| t["model"].get(pk.key).is_some()),
                "{model}: some path key is set"
            );
            assert!(!text.contains("{{"), "{model}: a placeholder is left");
            assert!(matches!(
                super::super::files::kind_of(&text),
                super::super::Kind::Main
            ));
            let ds = dataset_text("x.toml", model);
            let d: toml::Table = toml::from_str(&ds).unwrap();
            assert!(d["directory"].as_array().is_some());
            assert_eq!(d.contains_key("frame_buckets"), VIDEO.contains(&model));
        }
        // A path with a quote is still valid TOML.
        let text = main_text("sdxl", Path::new("/w/it's"), Path::new("/w/d.toml"));
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["output_dir"].as_str(), Some("/w/it's"));
    }
}
