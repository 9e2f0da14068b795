//! What can go wrong talking to the hub, each as one sentence a person can act on. No variant
//! carries the token or a server body, so printing or logging any of them is safe.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::units::format_bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// 401: no token, or one without access to a gated or private repo.
    NeedsToken {
        repo: String,
        /// The URL where the licence is accepted / access requested.
        page: String,
        token_sent: bool,
    },
    /// 403: the token is valid but may not read this repo.
    Forbidden {
        repo: String,
        page: String,
        gated: bool,
    },
    /// 404 (or the hub's 401 "not found" for anonymous callers).
    RepoNotFound {
        repo: String,
        token_sent: bool,
    },
    FileNotFound {
        repo: String,
        file: String,
        revision: String,
    },
    RevisionNotFound {
        repo: String,
        revision: String,
    },
    /// 429.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// The transfer broke off; the partial file is kept and the next try resumes from it.
    Dropped {
        file: String,
        done: u64,
        total: u64,
        partial: PathBuf,
    },
    /// ENOSPC, or not enough free space for what is left to download.
    DiskFull {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
    /// Offline mode and the cache lacks these (repo-relative paths, or the repo itself).
    Offline {
        repo: String,
        missing: Vec<String>,
    },
    /// No HTTP answer at all (DNS, refused, TLS, timeout before the headers).
    Unreachable {
        endpoint: String,
        detail: String,
    },
    Cancelled,
    /// Another status the hub is not expected to send.
    Http {
        status: u16,
        url: String,
    },
    /// A success answer without what the hub protocol promises (ETag, X-Repo-Commit, ...).
    Protocol(String),
    Io {
        path: PathBuf,
        detail: String,
    },
    /// Bad input from the caller (a repo id, a key, a config that cannot take the path).
    Invalid(String),
}

impl HubError {
    /// A stable code for JSON output and tests.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::NeedsToken { .. } => "needs-token",
            HubError::Forbidden { .. } => "forbidden",
            HubError::RepoNotFound { .. } => "repo-not-found",
            HubError::FileNotFound { .. } => "file-not-found",
            HubError::RevisionNotFound { .. } => "revision-not-found",
            HubError::RateLimited { .. } => "rate-limited",
            HubError::Dropped { .. } => "connection-dropped",
            HubError::DiskFull { .. } => "disk-full",
            HubError::Offline { .. } => "offline-miss",
            HubError::Unreachable { .. } => "unreachable",
            HubError::Cancelled => "cancelled",
            HubError::Http { .. } => "http",
            HubError::Protocol(_) => "protocol",
            HubError::Io { .. } => "io",
            HubError::Invalid(_) => "invalid",
        }
    }

    /// Whether running the same download again continues where this one stopped.
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            HubError::Dropped { .. }
                | HubError::DiskFull { .. }
                | HubError::Cancelled
                | HubError::Unreachable { .. }
                | HubError::RateLimited { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, e: &std::io::Error) -> HubError {
        HubError::Io {
            path: path.into(),
            detail: e.to_string(),
        }
    }
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubError::NeedsToken {
                repo,
                page,
                token_sent: false,
            } => write!(
                f,
                "{repo} needs a token with access: accept the licence at {page} and set HF_TOKEN"
            ),
            HubError::NeedsToken {
                repo,
                page,
                token_sent: true,
            } => write!(
                f,
                "{repo} needs a token with access, and the hub refused the one sent (401): accept \
                 the licence at {page} and set HF_TOKEN to a valid token of that account"
            ),
            HubError::Forbidden {
                repo,
                page,
                gated: true,
            } => write!(
                f,
                "{repo} is gated and this token has no access yet (403): accept the licence at \
                 {page} (some repos approve requests by hand), then try again"
            ),
            HubError::Forbidden {
                repo,
                page,
                gated: false,
            } => write!(
                f,
                "the hub denies this token access to {repo} (403): use a token with read access \
                 to it (a fine-grained token must list the repo), see {page}"
            ),
            HubError::RepoNotFound {
                repo,
                token_sent: false,
            } => write!(
                f,
                "no repo {repo} on the hub (404): check the owner/name spelling; a private repo \
                 needs HF_TOKEN"
            ),
            HubError::RepoNotFound {
                repo,
                token_sent: true,
            } => write!(
                f,
                "no repo {repo} on the hub (404): check the owner/name spelling (or the token \
                 cannot see this private repo)"
            ),
            HubError::FileNotFound {
                repo,
                file,
                revision,
            } => write!(
                f,
                "{repo} has no file {file} at revision {revision} (404): list the repo's files \
                 with `dpgui fetch {repo} --list`"
            ),
            HubError::RevisionNotFound { repo, revision } => {
                write!(f, "{repo} has no branch, tag or commit {revision} (404)")
            }
            HubError::RateLimited {
                retry_after: Some(d),
            } => write!(
                f,
                "the hub is rate-limiting requests (429): try again in {} s; a token (HF_TOKEN) \
                 gets higher limits",
                d.as_secs().max(1)
            ),
            HubError::RateLimited { retry_after: None } => write!(
                f,
                "the hub is rate-limiting requests (429): try again in a few minutes; a token \
                 (HF_TOKEN) gets higher limits"
            ),
            HubError::Dropped {
                file,
                done,
                total,
                partial,
            } => write!(
                f,
                "the connection dropped at {} of {} of {file}; the partial download ({}) is kept \
                 and the next try resumes from it",
                format_bytes(*done),
                format_bytes(*total),
                partial.display()
            ),
            HubError::DiskFull { dir, free, needed } => write!(
                f,
                "disk full: {} has {} free and {} more are needed; free some space and run \
                 again (a partial download resumes)",
                dir.display(),
                format_bytes(*free),
                format_bytes(*needed)
            ),
            HubError::Offline { repo, missing } => {
                if missing.is_empty() {
                    write!(
                        f,
                        "offline mode (HF_HUB_OFFLINE or --offline): {repo} is not in the cache"
                    )
                } else {
                    write!(
                        f,
                        "offline mode (HF_HUB_OFFLINE or --offline): not in the cache: {}",
                        missing
                            .iter()
                            .map(|m| format!("{repo}/{m}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
            HubError::Unreachable { endpoint, detail } => write!(
                f,
                "cannot reach the hub at {endpoint} ({detail}); check the network, or HF_ENDPOINT"
            ),
            HubError::Cancelled => write!(
                f,
                "cancelled; the partial download is kept and the next try resumes from it"
            ),
            HubError::Http { status, url } => {
                write!(f, "the hub answered HTTP {status} for {url}")
            }
            HubError::Protocol(m) => write!(f, "unexpected answer from the hub: {m}"),
            HubError::Io { path, detail } => write!(f, "{}: {detail}", path.display()),
            HubError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HubError {}

/// `{"code": ..., "message": ..., "resumable": ...}` in JSON output.
impl Serialize for HubError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("HubError", 3)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.serialize_field("resumable", &self.resumable())?;
        st.end()
    }
}

/// What a failed hub answer means, as huggingface_hub reads it: the `X-Error-Code` header first
/// (RepoNotFound, EntryNotFound, RevisionNotFound, GatedRepo), then the status.
pub(crate) struct Failure<'a> {
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub retry_after: Option<Duration>,
    pub url: &'a str,
}

pub(crate) struct Subject<'a> {
    pub endpoint: &'a str,
    pub repo: &'a str,
    pub file: Option<&'a str>,
    pub revision: &'a str,
    pub token_sent: bool,
}

pub(crate) fn classify(fail: &Failure<'_>, on: &Subject<'_>) -> HubError {
    let repo = on.repo.to_string();
    let page = format!("{}/{}", on.endpoint, on.repo);
    let token_sent = on.token_sent;
    match (fail.status, fail.error_code) {
        (_, Some("RepoNotFound")) => HubError::RepoNotFound { repo, token_sent },
        (_, Some("RevisionNotFound")) => HubError::RevisionNotFound {
            repo,
            revision: on.revision.to_string(),
        },
        (_, Some("EntryNotFound")) => HubError::FileNotFound {
            repo,
            file: on.file.unwrap_or_default().to_string(),
            revision: on.revision.to_string(),
        },
        (401, _) => HubError::NeedsToken {
            repo,
            page,
            token_sent,
        },
        (403, code) => HubError::Forbidden {
            repo,
            page,
            gated: code == Some("GatedRepo"),
        },
        (404, _) => match on.file {
            Some(file) => HubError::FileNotFound {
                repo,
                file: file.to_string(),
                revision: on.revision.to_string(),
            },
            None => HubError::RepoNotFound { repo, token_sent },
        },
        (429, _) => HubError::RateLimited {
            retry_after: fail.retry_after,
        },
        (status, _) => HubError::Http {
            status,
            url: fail.url.to_string(),
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on the hub and read as unknown).
pub(crate) fn retry_after(v: Option<&str>) -> Option<Duration> {
    v?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(file: Option<&str>) -> Subject<'_> {
        Subject {
            endpoint: "https://huggingface.co",
            repo: "black-forest-labs/FLUX.1-dev",
            file,
            revision: "main",
            token_sent: false,
        }
    }

    fn fail(status: u16, code: Option<&str>) -> Failure<'_> {
        Failure {
            status,
            error_code: code,
            retry_after: None,
            url: "u",
        }
    }

    #[test]
    fn statuses_and_error_codes_map_as_huggingface_hub_does() {
        let e = classify(&fail(401, Some("GatedRepo")), &subject(Some("a")));
        assert_eq!(
            e.to_string(),
            "black-forest-labs/FLUX.1-dev needs a token with access: accept the licence at \
             https://huggingface.co/black-forest-labs/FLUX.1-dev and set HF_TOKEN"
        );
        // The hub answers 401 + RepoNotFound to anonymous callers for repos that do not exist.
        let e = classify(&fail(401, Some("RepoNotFound")), &subject(Some("a")));
        assert_eq!(e.code(), "repo-not-found");
        let e = classify(&fail(404, Some("EntryNotFound")), &subject(Some("x.bin")));
        assert!(e.to_string().contains("has no file x.bin at revision main"));
        assert_eq!(
            classify(&fail(404, None), &subject(None)).code(),
            "repo-not-found"
        );
        assert_eq!(
            classify(&fail(403, Some("GatedRepo")), &subject(None)),
            HubError::Forbidden {
                repo: "black-forest-labs/FLUX.1-dev".into(),
                page: "https://huggingface.co/black-forest-labs/FLUX.1-dev".into(),
                gated: true
            }
        );
        let mut f = fail(429, None);
        f.retry_after = retry_after(Some(" 30 "));
        let e = classify(&f, &subject(None));
        assert!(e.to_string().contains("try again in 30 s"), "{e}");
        assert!(e.resumable());
        assert_eq!(classify(&fail(500, None), &subject(None)).code(), "http");
    }

    #[test]
    fn json_form_has_code_message_and_resumable() {
        let e = HubError::DiskFull {
            dir: "/data".into(),
            free: 1024,
            needed: 3 << 30,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "disk-full");
        assert_eq!(v["resumable"], true);
        assert_eq!(
            v["message"],
            "disk full: /data has 1 KiB free and 3.0 GiB more are needed; free some space and \
             run again (a partial download resumes)"
        );
    }
}
