//! Writes a downloaded path into a training config: one value changes, the comments, order,
//! quoting style and spacing of everything else stay as they were (toml_edit), and the file is
//! replaced atomically (the Config tab's save, which also keeps `NAME.bak`).

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, Value};

use super::error::HubError;
use crate::trainer::lint::{self, TEXT_ENCODERS};

/// The table path of a key: `model.checkpoint_path` as given; a bare key that some model type
/// reads as a path (`checkpoint_path`) goes under `[model]`; other bare keys stay top-level.
pub fn key_path(key: &str) -> Vec<String> {
    let parts: Vec<String> = key.split('.').map(|s| s.trim().to_string()).collect();
    if parts.len() == 1
        && lint::model_types()
            .iter()
            .any(|(_, ks)| ks.iter().any(|p| p.key == parts[0]))
    {
        return vec!["model".into(), parts[0].clone()];
    }
    parts
}

/// A TOML string in the style the old value used: a literal `'...'` (diffusion-pipe's examples
/// use those) when the path allows it, else a basic `"..."` string.
fn string_value(path: &str, literal: bool) -> Value {
    if literal
        && !path.contains('\'')
        && !path.chars().any(|c| c.is_control())
        && let Ok(v) = format!("'{path}'").parse::<Value>()
    {
        return v;
    }
    Value::from(path)
}

/// The config text with `key` set to `path`; everything else byte for byte as it was.
pub fn set_path_in_text(text: &str, key: &str, path: &str) -> Result<String, String> {
    let parts = key_path(key);
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a config key"));
    }
    if parts.last().map(String::as_str) == Some(TEXT_ENCODERS) {
        return Err(
            "text_encoders is a list of {path = ..., type = ...} tables: set its path in the \
             config editor"
                .into(),
        );
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("not valid TOML: {}", e.message().trim_end()))?;
    let (last, tables) = parts.split_last().ok_or("empty key")?;
    let mut table = doc.as_table_mut() as &mut dyn toml_edit::TableLike;
    for (i, name) in tables.iter().enumerate() {
        if table.get(name).is_none() {
            let mut t = Table::new();
            // `[model]` appears as its own header, not as an implicit parent only.
            t.set_implicit(i + 1 < tables.len());
            table.insert(name, Item::Table(t));
        }
        let item = table.get_mut(name).ok_or("unreachable")?;
        table = item.as_table_like_mut().ok_or_else(|| {
            format!(
                "`{}` is a value, not a table: cannot set `{key}` in it",
                parts[..=i].join(".")
            )
        })?;
    }
    match table.get_mut(last) {
        Some(item) => {
            let old = item
                .as_value_mut()
                .ok_or_else(|| format!("`{key}` is a table, not a path"))?;
            if !old.is_str() {
                return Err(format!(
                    "`{key}` holds a {}, not a path: change it by hand",
                    old.type_name()
                ));
            }
            let literal = match &*old {
                Value::String(f) => f.display_repr().starts_with('\''),
                _ => false,
            };
            let decor = old.decor().clone();
            let mut new = string_value(path, literal);
            *new.decor_mut() = decor;
            *old = new;
        }
        None => {
            table.insert(last, Item::Value(string_value(path, true)));
        }
    }
    Ok(doc.to_string())
}

/// Sets `key` (e.g. `model.checkpoint_path`) in the config file to `path`, atomically.
pub fn write_path_into_config(config: &Path, key: &str, path: &Path) -> Result<(), HubError> {
    let value = path
        .to_str()
        .ok_or_else(|| HubError::Invalid(format!("{} is not UTF-8", path.display())))?;
    let text = crate::tui::config::files::read_config(config).map_err(HubError::Invalid)?;
    let new = set_path_in_text(&text, key, value)
        .map_err(|e| HubError::Invalid(format!("{}: {e}", config.display())))?;
    crate::atomic::save_atomic(config, new.as_bytes(), &|_| {})
        .map_err(|e| HubError::io(config, &e))
}

/// `[model] type` of a main config.
pub fn model_type_of(text: &str) -> Option<String> {
    crate::trainer::config::read_main(text).model_type
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# SDXL LoRA
output_dir = '/out'   # where runs go

[model]
type = 'sdxl'
# the checkpoint: a single file
checkpoint_path = 'stabilityai/stable-diffusion-xl-base-1.0'  # FIXME
dtype = 'bfloat16'

[adapter]
type = 'lora'
rank = 32
";

    #[test]
    fn only_the_value_changes_comments_and_quoting_stay() {
        let out = set_path_in_text(
            CONFIG,
            "model.checkpoint_path",
            "/hub/snap/sd_xl.safetensors",
        )
        .unwrap();
        let expected = CONFIG.replace(
            "'stabilityai/stable-diffusion-xl-base-1.0'",
            "'/hub/snap/sd_xl.safetensors'",
        );
        assert_eq!(out, expected);
        // A bare model path key means the [model] one.
        assert_eq!(
            set_path_in_text(CONFIG, "checkpoint_path", "/hub/snap/sd_xl.safetensors").unwrap(),
            expected
        );
    }

    #[test]
    fn missing_keys_are_added_double_quotes_and_awkward_paths_kept_valid() {
        let text = "[model]\ntype = \"flux\"\ndiffusers_path = \"\"\n";
        let out = set_path_in_text(text, "model.diffusers_path", "/a/it's here").unwrap();
        assert_eq!(
            out,
            "[model]\ntype = \"flux\"\ndiffusers_path = \"/a/it's here\"\n"
        );
        let out = set_path_in_text(text, "model.transformer_path", "/t.safetensors").unwrap();
        assert_eq!(
            out,
            "[model]\ntype = \"flux\"\ndiffusers_path = \"\"\ntransformer_path = '/t.safetensors'\n"
        );
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            parsed["model"]["transformer_path"].as_str(),
            Some("/t.safetensors")
        );
        // No [model] yet: it is created.
        let out = set_path_in_text("epochs = 1\n", "model.ckpt_path", "/w").unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["model"]["ckpt_path"].as_str(), Some("/w"));
        assert_eq!(parsed["epochs"].as_integer(), Some(1));
    }

    #[test]
    fn dotted_and_inline_tables_work_and_bad_targets_are_refused() {
        let out = set_path_in_text(
            "model.type = 'wan'\nmodel.ckpt_path = 'x/y'\n",
            "model.ckpt_path",
            "/w",
        )
        .unwrap();
        assert_eq!(out, "model.type = 'wan'\nmodel.ckpt_path = '/w'\n");
        let out = set_path_in_text(
            "model = { type = 'wan', ckpt_path = 'x/y' }\n",
            "model.ckpt_path",
            "/w",
        )
        .unwrap();
        assert_eq!(out, "model = { type = 'wan', ckpt_path = '/w' }\n");
        assert!(set_path_in_text("model = 3\n", "model.ckpt_path", "/w").is_err());
        assert!(set_path_in_text("[model]\nckpt_path = 3\n", "model.ckpt_path", "/w").is_err());
        assert!(set_path_in_text("[model\n", "model.ckpt_path", "/w").is_err());
        assert!(set_path_in_text("", "model.text_encoders", "/w").is_err());
        assert!(set_path_in_text("", "model..x", "/w").is_err());
    }

    #[test]
    fn the_file_is_replaced_atomically_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("train.toml");
        std::fs::write(&cfg, CONFIG).unwrap();
        write_path_into_config(&cfg, "model.checkpoint_path", Path::new("/p/x.safetensors"))
            .unwrap();
        let now = std::fs::read_to_string(&cfg).unwrap();
        assert!(now.contains("checkpoint_path = '/p/x.safetensors'  # FIXME\n"));
        assert!(now.contains("# the checkpoint: a single file\n"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("train.toml.bak")).unwrap(),
            CONFIG
        );
        assert_eq!(model_type_of(&now).as_deref(), Some("sdxl"));
        // Binary junk is refused, not rewritten.
        std::fs::write(&cfg, b"\0\x01\xff").unwrap();
        assert!(write_path_into_config(&cfg, "model.checkpoint_path", Path::new("/p")).is_err());
        assert!(
            write_path_into_config(&dir.path().join("none.toml"), "k", Path::new("/p")).is_err()
        );
    }
}
