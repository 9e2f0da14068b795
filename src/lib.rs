//! dpgui: a terminal dashboard for training diffusion-model LoRAs with diffusion-pipe.
//!
//! Layout (see README "For developers"):
//! - `trainer`: pure knowledge of diffusion-pipe and the DeepSpeed launcher (no machine I/O).
//! - `system`: the machine: processes, ports, GPUs, signals, the Python environment.
//! - `jobs`: dpgui's own jobs (journal on disk).
//! - `datasets`: scans of dataset directories (media headers, captions, caches), cached on disk.
//! - `hub`: Hugging Face Hub downloads into the shared hub cache.
//! - `tui`: the dashboard; views only draw state.
//! - `cli`: the headless subcommands, rendering the same `system` results as the tabs.

pub mod atomic;
pub mod cli;
pub mod datasets;
pub mod hub;
pub mod jobs;
pub mod paths;
pub mod settings;
pub mod system;
pub mod trainer;
pub mod tui;
pub mod units;
