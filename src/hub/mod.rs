//! Hugging Face Hub downloads: a repo id where diffusion-pipe needs a local path becomes the
//! right local file or folder, fetched into the hub cache Python's huggingface_hub shares.
//!
//! - [`config`]: endpoint, token (never printed), cache dir and offline mode from the hub's own
//!   variables (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_TOKEN_PATH, HF_HUB_OFFLINE).
//! - [`listing`]: a repo's files with sizes (hf-hub's tree listing; the cache when offline).
//! - [`suggest`]: which of them fit a config key, and the known-good sources per model type.
//! - [`queue`]: the background download queue with per-file and total progress, cancel, resume.
//! - [`download`]: one file, resumable (built on reqwest, see there why not hf-hub's download).
//! - [`cache`]: the cache layout, the cache view (repos, sizes, last use) and deleting.
//! - [`config_edit`]: the local path written into a training config, comments intact.

pub mod cache;
pub mod config;
pub mod config_edit;
pub mod download;
pub mod error;
pub mod listing;
pub mod queue;
pub mod suggest;

pub use cache::{CacheKey, CachedRepo, RepoCache, delete_repo, scan};
pub use config::{HubConfig, Token, TokenSource};
pub use config_edit::{model_type_of, set_path_in_text, write_path_into_config};
pub use download::{Dest, free_bytes};
pub use error::HubError;
pub use listing::{RepoFile, RepoListing, list_files, list_files_blocking};
pub use queue::{
    Downloader, FileState, FileStatus, JobId, JobState, JobStatus, Request, Selection,
};
pub use suggest::{
    HubSource, Suggestion, SuggestionKind, default_sources, merge_sources, sources_for, suggest,
};
