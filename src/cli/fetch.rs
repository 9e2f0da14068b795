//! `dpgui fetch REPO [FILE ...] [--revision R] [--into CONFIG --key KEY] [--dir DIR]
//! [--offline] [--list] [--json]`: a Hugging Face download without the dashboard. Progress goes
//! to stderr (a live line on a terminal, a plain line about once a second otherwise); the local
//! path(s), or the JSON result, to stdout. Exit status: 0 done, 1 failed, 2 bad arguments.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::print_json;
use crate::hub::{
    self, Dest, Downloader, FileState, HubConfig, HubError, JobState, JobStatus, Request,
    Selection, Suggestion, SuggestionKind,
};
use crate::settings::Settings;
use crate::trainer::lint::Expect;
use crate::units::{escape_controls, format_bytes};

pub struct FetchArgs {
    pub repo: String,
    pub files: Vec<String>,
    pub revision: String,
    pub into: Option<PathBuf>,
    pub key: Option<String>,
    pub dir: Option<PathBuf>,
    pub offline: bool,
    pub list: bool,
    pub json: bool,
}

fn shown(s: &str) -> String {
    escape_controls(s, false).into_owned()
}

fn shown_path(p: &Path) -> String {
    shown(&p.to_string_lossy())
}

fn bad(msg: &str) -> i32 {
    eprintln!("dpgui fetch: {}", shown(msg));
    2
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    size: Option<u64>,
    state: FileState,
    fetched: u64,
    resumed_from: u64,
    local_path: Option<&'a Path>,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    file: &'a Path,
    key: &'a str,
    value: &'a Path,
}

#[derive(Serialize)]
struct FetchJson<'a> {
    ok: bool,
    repo: &'a str,
    revision: &'a str,
    commit: Option<&'a str>,
    local_path: Option<&'a Path>,
    files: Vec<FileJson<'a>>,
    total_bytes: u64,
    fetched_bytes: u64,
    config: Option<ConfigJson<'a>>,
    error: Option<&'a HubError>,
}

/// "41s", "3m05s", "1h02m".
fn eta(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// One progress line: the current file and the whole job.
pub fn progress_line(s: &JobStatus) -> String {
    if s.state == JobState::Listing {
        return format!("listing {} ...", shown(&s.request.repo));
    }
    let n = s.files.len();
    let current = s
        .files
        .iter()
        .position(|f| matches!(f.state, FileState::Downloading | FileState::Checking))
        .or_else(|| s.files.iter().rposition(|f| f.state != FileState::Pending));
    let mut line = String::new();
    if let Some(i) = current {
        let f = &s.files[i];
        line.push_str(&format!("[{}/{n}] {}", i + 1, shown(&f.path)));
        if let Some(size) = f.size.filter(|_| f.state == FileState::Downloading) {
            let pct = (f.done * 100).checked_div(size).unwrap_or(100);
            line.push_str(&format!(
                "  {} / {} ({pct}%)",
                format_bytes(f.done),
                format_bytes(size)
            ));
        } else if f.state == FileState::Checking {
            line.push_str("  checking");
        }
        let others = s
            .files
            .iter()
            .enumerate()
            .filter(|(j, f)| {
                *j != i && matches!(f.state, FileState::Downloading | FileState::Checking)
            })
            .count();
        if others > 0 {
            line.push_str(&format!("  (+{others} more at once)"));
        }
    }
    if n > 1 && s.total > 0 {
        line.push_str(&format!(
            "  total {} / {}",
            format_bytes(s.done),
            format_bytes(s.total)
        ));
    }
    if s.rate > 0.0 {
        line.push_str(&format!("  {}/s", format_bytes(s.rate as u64)));
    }
    if let Some(e) = s.eta_secs {
        line.push_str(&format!("  ETA {}", eta(e)));
    }
    line
}

/// `dpgui fetch`.
pub fn fetch(settings: &Settings, a: FetchArgs) -> color_eyre::Result<i32> {
    if !hub::config::valid_repo_id(&a.repo) {
        return Ok(bad(&format!(
            "`{}` is not a hub repo id (owner/name, e.g. stabilityai/stable-diffusion-xl-base-1.0)",
            a.repo
        )));
    }
    if let Some(f) = a.files.iter().find(|f| !hub::config::valid_repo_path(f)) {
        return Ok(bad(&format!("`{f}` is not a file path inside the repo")));
    }
    if a.into.is_some() != a.key.is_some() {
        return Ok(bad("--into and --key go together"));
    }
    if a.revision.trim().is_empty() || a.revision.contains("..") {
        return Ok(bad(&format!("`{}` is not a revision", a.revision)));
    }
    // The config is read up front: a bad --into should not cost a download.
    let model_type = match &a.into {
        Some(cfg) => match crate::tui::config::files::read_config(cfg) {
            Ok(text) => hub::model_type_of(&text).unwrap_or_default(),
            Err(e) => return Ok(bad(&e)),
        },
        None => String::new(),
    };
    let key = a.key.as_deref().map(hub::suggest::bare_key);
    let expect = key.map(|k| hub::suggest::expect_of(&model_type, k));
    if expect == Some(Expect::File) && a.files.len() > 1 {
        return Ok(bad(&format!(
            "{} needs one file, {} given",
            a.key.as_deref().unwrap_or_default(),
            a.files.len()
        )));
    }
    let mut cfg = HubConfig::from_process_env();
    cfg.offline |= a.offline;
    let dest = match &a.dir {
        Some(d) => Dest::Dir(std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        None => Dest::Cache,
    };
    tracing::info!(repo = %a.repo, revision = %a.revision, offline = cfg.offline, "fetch");

    let need_listing = a.list || (a.files.is_empty() && key.is_some());
    let listing = if need_listing {
        match hub::list_files_blocking(&cfg, &a.repo, &a.revision) {
            Ok(l) => Some(l),
            Err(e) => return Ok(fail(&a, &e)),
        }
    } else {
        None
    };
    let suggestions: Vec<Suggestion> = match (&listing, key) {
        (Some(l), Some(k)) => {
            hub::suggest(&model_type, k, &l.files, &settings.hub_sources, &a.repo)
        }
        _ => Vec::new(),
    };
    if a.list {
        let l = listing.as_ref().expect("listed above");
        if a.json {
            print_json(&serde_json::json!({
                "repo": a.repo,
                "revision": a.revision,
                "from_cache": l.from_cache,
                "files": l.files,
                "total_bytes": l.total_bytes(),
                "suggestions": suggestions,
            }))?;
        } else {
            for f in &l.files {
                println!("{:>10}  {}", format_bytes(f.size), shown(&f.path));
            }
            println!(
                "{} files, {}{}",
                l.files.len(),
                format_bytes(l.total_bytes()),
                if l.from_cache {
                    " (from the cache)"
                } else {
                    ""
                }
            );
            for (i, s) in suggestions.iter().enumerate() {
                let what = if s.path.is_empty() {
                    "(whole repo)".to_string()
                } else {
                    shown(&s.path)
                };
                println!(
                    "{} {what}  {}  {}",
                    if i == 0 { "suggested:" } else { "     also:" },
                    format_bytes(s.bytes),
                    shown(&s.why)
                );
            }
        }
        return Ok(0);
    }

    let selection = if !a.files.is_empty() {
        Selection::Files(a.files.clone())
    } else if let Some(k) = key {
        let Some(first) = suggestions.first() else {
            let what = match expect {
                Some(Expect::File) => "a single weights file",
                Some(Expect::Dir) => "a folder",
                _ => "a file or folder",
            };
            let e = HubError::Invalid(format!(
                "{} has nothing that fits {k} ({what}); name the file (see `dpgui fetch {} --list`)",
                a.repo, a.repo
            ));
            return Ok(fail(&a, &e));
        };
        match first.kind {
            SuggestionKind::File => Selection::Files(vec![first.path.clone()]),
            SuggestionKind::Folder => Selection::Folder(first.path.clone()),
            SuggestionKind::Repo => Selection::All,
        }
    } else {
        Selection::All
    };

    let downloader = match Downloader::new(cfg) {
        Ok(d) => d,
        Err(e) => return Ok(fail(&a, &e)),
    };
    let id = downloader.enqueue(Request {
        repo: a.repo.clone(),
        revision: a.revision.clone(),
        selection,
        dest,
    });
    let status = follow(&downloader, id);

    if status.state != JobState::Done {
        let e = status.error.clone().unwrap_or(HubError::Cancelled);
        return Ok(report_failure(&a, &status, &e));
    }
    let Some(mut local) = status.local_path.clone() else {
        let e = HubError::Protocol("the download ended without a local path".into());
        return Ok(report_failure(&a, &status, &e));
    };
    // A directory key given one named file still needs the folder: the snapshot (or --dir) root.
    if expect == Some(Expect::Dir)
        && let [one] = a.files.as_slice()
        && let Some(root) = strip_repo_path(&local, one)
    {
        local = root;
    }
    let mut written = None;
    if let (Some(cfg_file), Some(k)) = (&a.into, &a.key) {
        if let Err(e) = hub::write_path_into_config(cfg_file, k, &local) {
            return Ok(report_failure(&a, &status, &e));
        }
        written = Some((cfg_file.as_path(), k.as_str()));
    }
    if a.json {
        print_json(&job_json(&a, &status, written, None))?;
    } else {
        for f in &status.files {
            let how = match f.state {
                FileState::Cached => "already there".to_string(),
                _ if f.resumed_from > 0 => format!("resumed from {}", format_bytes(f.resumed_from)),
                _ => "downloaded".to_string(),
            };
            eprintln!(
                "✓ {}  {}  {how}",
                shown(&f.path),
                format_bytes(f.size.unwrap_or(0))
            );
        }
        println!("{}", shown_path(&local));
        if let Some((file, k)) = written {
            eprintln!("{}: {k} = {}", shown_path(file), shown_path(&local));
        }
    }
    Ok(0)
}

/// `<root>/<repo path>` → `<root>`.
fn strip_repo_path(local: &Path, repo_path: &str) -> Option<PathBuf> {
    let mut p = local;
    for _ in repo_path.split('/') {
        p = p.parent()?;
    }
    local.ends_with(repo_path).then(|| p.to_path_buf())
}

/// Waits for the job, showing progress on stderr.
fn follow(d: &Downloader, id: hub::JobId) -> JobStatus {
    let tty = std::io::stderr().is_terminal();
    let period = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let mut err = std::io::stderr();
    let mut last_print = Instant::now();
    let mut shown_any = false;
    loop {
        let Some(s) = d.wait_timeout(id, period) else {
            unreachable!("the job was queued here");
        };
        if s.state.finished() {
            if tty && shown_any {
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
            return s;
        }
        if last_print.elapsed() < period.mul_f32(0.9) {
            continue;
        }
        last_print = Instant::now();
        let downloading = s.files.iter().any(|f| f.state == FileState::Downloading)
            || s.state == JobState::Listing;
        if !downloading && !tty {
            continue;
        }
        let line = progress_line(&s);
        if tty {
            // Some terminals (and `script`) report a width of 0.
            let width = crossterm::terminal::size()
                .map(|(w, _)| w as usize)
                .ok()
                .filter(|w| *w >= 20)
                .unwrap_or(100);
            let _ = write!(
                err,
                "\r\x1b[2K{}",
                crate::units::ellipsize(&line, width.saturating_sub(1))
            );
        } else {
            let _ = writeln!(err, "fetch: {line}");
        }
        let _ = err.flush();
        shown_any = true;
    }
}

fn job_json<'a>(
    a: &'a FetchArgs,
    s: &'a JobStatus,
    written: Option<(&'a Path, &'a str)>,
    error: Option<&'a HubError>,
) -> FetchJson<'a> {
    FetchJson {
        ok: error.is_none(),
        repo: &a.repo,
        revision: &a.revision,
        commit: s.commit.as_deref(),
        local_path: s.local_path.as_deref(),
        files: s
            .files
            .iter()
            .map(|f| FileJson {
                path: &f.path,
                size: f.size,
                state: f.state,
                fetched: f.fetched,
                resumed_from: f.resumed_from,
                local_path: f.local_path.as_deref(),
            })
            .collect(),
        total_bytes: s.total,
        fetched_bytes: s.fetched,
        config: written.and_then(|(file, key)| {
            Some(ConfigJson {
                file,
                key,
                value: s.local_path.as_deref()?,
            })
        }),
        error,
    }
}

fn report_failure(a: &FetchArgs, s: &JobStatus, e: &HubError) -> i32 {
    if a.json {
        let _ = print_json(&job_json(a, s, None, Some(e)));
    } else {
        eprintln!("dpgui fetch: {}", shown(&e.to_string()));
    }
    1
}

/// A failure before any job existed (the listing, the client).
fn fail(a: &FetchArgs, e: &HubError) -> i32 {
    if a.json {
        let _ = print_json(&serde_json::json!({
            "ok": false,
            "repo": a.repo,
            "revision": a.revision,
            "commit": null,
            "local_path": null,
            "files": [],
            "total_bytes": 0,
            "fetched_bytes": 0,
            "config": null,
            "error": e,
        }));
    } else {
        eprintln!("dpgui fetch: {}", shown(&e.to_string()));
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_path_minus_its_repo_path_is_the_snapshot_root() {
        assert_eq!(
            strip_repo_path(
                Path::new("/c/snapshots/abc/unet/w.safetensors"),
                "unet/w.safetensors"
            ),
            Some(PathBuf::from("/c/snapshots/abc"))
        );
        assert_eq!(strip_repo_path(Path::new("/c/x"), "unet/x"), None);
    }

    #[test]
    fn the_progress_line_names_the_first_file_under_way_and_counts_the_others() {
        use crate::hub::{Dest, FileStatus, Request, Selection};
        let file = |path: &str, state, done| FileStatus {
            path: path.into(),
            size: Some(2 << 20),
            done,
            resumed_from: 0,
            fetched: done,
            state,
            local_path: None,
            rate: 0.0,
            eta_secs: None,
        };
        let files = vec![
            file("a.safetensors", FileState::Done, 2 << 20),
            file("b.safetensors", FileState::Downloading, 1 << 20),
            file("c.safetensors", FileState::Downloading, 0),
            file("d.safetensors", FileState::Checking, 0),
            file("e.safetensors", FileState::Pending, 0),
        ];
        let s = JobStatus {
            id: 1,
            request: Request {
                repo: "o/r".into(),
                revision: "main".into(),
                selection: Selection::All,
                dest: Dest::Cache,
            },
            state: JobState::Running,
            total: 10 << 20,
            done: 3 << 20,
            fetched: 3 << 20,
            files,
            commit: None,
            rate: 0.0,
            eta_secs: None,
            local_path: None,
            error: None,
        };
        assert_eq!(
            progress_line(&s),
            "[2/5] b.safetensors  1 MiB / 2 MiB (50%)  (+2 more at once)  total 3 MiB / 10 MiB"
        );
    }

    #[test]
    fn eta_reads_naturally() {
        assert_eq!(eta(41.2), "41s");
        assert_eq!(eta(185.0), "3m05s");
        assert_eq!(eta(3720.0), "1h02m");
    }
}
