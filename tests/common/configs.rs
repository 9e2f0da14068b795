//! A training config that passes dpgui's linter (so a launch's pre-flight lets it through) for
//! the diffusion-pipe stand-in: an sdxl config whose model file, dataset config and image
//! directory exist under `dir`.

use std::path::{Path, PathBuf};

/// Writes `<dir>/model.safetensors`, `<dir>/images/`, `<dir>/dataset.toml` and the main config
/// at `config` (output into `<dir>/out`); returns `config`.
pub fn write_training_config(dir: &Path, config: &Path, epochs: u32) -> PathBuf {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"").unwrap();
    std::fs::write(
        dir.join("dataset.toml"),
        format!(
            "resolutions = [512]\n\n[[directory]]\npath = '{}'\nnum_repeats = 1\n",
            dir.join("images").display()
        ),
    )
    .unwrap();
    if let Some(parent) = config.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(
        config,
        format!(
            "output_dir = '{out}'\ndataset = '{dataset}'\nepochs = {epochs}\n\
             save_every_n_epochs = 1\ncheckpoint_every_n_minutes = 120\n\
             micro_batch_size_per_gpu = 1\n\n\
             [model]\ntype = 'sdxl'\ncheckpoint_path = '{model}'\ndtype = 'bfloat16'\n\n\
             [adapter]\ntype = 'lora'\nrank = 16\ndtype = 'bfloat16'\n\n\
             [optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n",
            out = dir.join("out").display(),
            dataset = dir.join("dataset.toml").display(),
            model = dir.join("model.safetensors").display(),
        ),
    )
    .unwrap();
    config.to_path_buf()
}
