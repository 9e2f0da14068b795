//! What diffusion-pipe makes of a dataset directory: which files it reads (`files`) and how it
//! groups them into size buckets and batches (`buckets`). Pure: the scan is `crate::datasets`.

pub mod buckets;
pub mod files;
