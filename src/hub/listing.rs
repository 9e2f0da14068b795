//! A repo's files with their sizes: from the hub's tree listing (through hf-hub), or from the
//! cache when offline or when the hub cannot be reached.

use futures::StreamExt;
use serde::Serialize;

use super::HubConfig;
use super::cache::RepoCache;
use super::error::{Failure, HubError, Subject, classify};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoFile {
    /// Repo-relative, `/`-separated.
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoListing {
    pub repo: String,
    pub revision: String,
    /// Known when the listing came from the cache.
    pub commit: Option<String>,
    /// Sorted by path.
    pub files: Vec<RepoFile>,
    /// Offline, or the hub was unreachable and the cached snapshot stood in.
    pub from_cache: bool,
}

impl RepoListing {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// An hf-hub client on the same endpoint, cache and token as `cfg`.
pub(crate) fn hf_client(cfg: &HubConfig) -> Result<hf_hub::HFClient, HubError> {
    let mut b = hf_hub::HFClient::builder()
        .endpoint(cfg.endpoint.clone())
        .cache_dir(cfg.cache_dir.clone())
        .client(super::download::http_client(true)?)
        .retry_max_attempts(2);
    if let Some(t) = &cfg.token {
        b = b.token(t.secret());
    }
    b.build()
        .map_err(|e| HubError::Invalid(format!("HF_ENDPOINT {}: {e}", cfg.endpoint)))
}

/// An hf-hub error in dpgui's terms.
pub(crate) fn from_hf(e: hf_hub::HFError, cfg: &HubConfig, on: &Subject<'_>) -> HubError {
    use hf_hub::HFError as E;
    let ctx = match &e {
        E::Http { context }
        | E::AuthRequired { context }
        | E::Forbidden { context }
        | E::Conflict { context }
        | E::RateLimited { context, .. } => Some(context.as_ref()),
        E::RepoNotFound { context, .. }
        | E::EntryNotFound { context, .. }
        | E::RevisionNotFound { context, .. } => context.as_deref(),
        _ => None,
    };
    if let Some(c) = ctx {
        let retry_after = match &e {
            E::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        return classify(
            &Failure {
                status: c.status.as_u16(),
                error_code: c.error_code.as_deref(),
                retry_after,
                url: &c.url,
            },
            on,
        );
    }
    match e {
        E::Request { source, .. } => HubError::Unreachable {
            endpoint: cfg.endpoint.clone(),
            detail: super::download::transport_detail(&source),
        },
        E::Io(io) => HubError::io(&cfg.cache_dir, &io),
        other => HubError::Protocol(other.to_string()),
    }
}

fn from_cache(cfg: &HubConfig, repo: &str, revision: &str) -> Option<RepoListing> {
    let (commit, files) = RepoCache::new(&cfg.cache_dir, repo).cached_files(revision)?;
    Some(RepoListing {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit: Some(commit),
        files,
        from_cache: true,
    })
}

/// Lists every file of `repo` at `revision`, recursively, with sizes.
pub async fn list_files(
    cfg: &HubConfig,
    repo: &str,
    revision: &str,
) -> Result<RepoListing, HubError> {
    if !super::config::valid_repo_id(repo) {
        return Err(HubError::Invalid(format!(
            "`{repo}` is not a hub repo id (owner/name)"
        )));
    }
    if cfg.offline {
        return from_cache(cfg, repo, revision).ok_or_else(|| HubError::Offline {
            repo: repo.to_string(),
            missing: Vec::new(),
        });
    }
    let client = hf_client(cfg)?;
    let (owner, name) = hf_hub::split_id(repo);
    let handle = client.model(owner, name);
    let subject = Subject {
        endpoint: &cfg.endpoint,
        repo,
        file: None,
        revision,
        token_sent: cfg.token.is_some(),
    };
    let result = async {
        let stream = handle
            .list_tree()
            .revision(revision.to_string())
            .recursive(true)
            .send()?;
        futures::pin_mut!(stream);
        let mut files = Vec::new();
        while let Some(entry) = stream.next().await {
            if let hf_hub::repository::RepoTreeEntry::File {
                path, size, lfs, ..
            } = entry?
            {
                let size = lfs.and_then(|l| l.size).unwrap_or(size);
                files.push(RepoFile { path, size });
            }
        }
        Ok::<_, hf_hub::HFError>(files)
    }
    .await;
    match result {
        Ok(mut files) => {
            files.retain(|f| super::config::valid_repo_path(&f.path));
            files.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(RepoListing {
                repo: repo.to_string(),
                revision: revision.to_string(),
                commit: None,
                files,
                from_cache: false,
            })
        }
        Err(e) => {
            let err = from_hf(e, cfg, &subject);
            // As huggingface_hub: no network, but a cached snapshot, is good enough.
            match (&err, from_cache(cfg, repo, revision)) {
                (HubError::Unreachable { .. }, Some(l)) => Ok(l),
                _ => Err(err),
            }
        }
    }
}

/// [`list_files`] for callers without a runtime (the CLI, a TUI worker thread).
pub fn list_files_blocking(
    cfg: &HubConfig,
    repo: &str,
    revision: &str,
) -> Result<RepoListing, HubError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HubError::Protocol(format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(list_files(cfg, repo, revision))
}
