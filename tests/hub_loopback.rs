//! Hugging Face downloads against a loopback server that speaks the hub's file protocol
//! (tests/common/hub_server.rs), each test with its own temporary HF_HOME: the `dpgui fetch`
//! binary with the hub's environment variables, and the library's download queue.

#[path = "common/hub_server.rs"]
mod hub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dpgui::hub::{self, Dest, Downloader, HubConfig, JobState, Request, Selection, Token};
use hub_server::{Access, Content, HubServer, RepoSpec, pattern_byte};

const SDXL: &str = "stabilityai/stable-diffusion-xl-base-1.0";
const COMMIT: &str = "462165984030d82259a11f4367a4eed129e94a7b";
const COMMIT2: &str = "0123456789abcdef0123456789abcdef01234567";
const SECRET: &str = "hf_sEcReT0123456789abcdefXYZ";

/// Bytes no formula in the code under test could produce by accident (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sdxl_repo(big: &[u8]) -> RepoSpec {
    RepoSpec::new(
        SDXL,
        COMMIT,
        vec![
            (
                "model_index.json",
                Content::Bytes(b"{\"_class_name\": \"x\"}".to_vec()),
            ),
            ("sd_xl_base_1.0.safetensors", Content::Bytes(big.to_vec())),
            (
                "sd_xl_offset_example-lora_1.0.safetensors",
                Content::Bytes(noise(1000, 3)),
            ),
            ("unet/config.json", Content::Bytes(b"{}".to_vec())),
            (
                "unet/diffusion_pytorch_model.safetensors",
                Content::Bytes(noise(2000, 4)),
            ),
        ],
    )
}

struct Env {
    _dir: tempfile::TempDir,
    home: PathBuf,
    state: PathBuf,
    work: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("hf");
        let state = dir.path().join("state");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        Env {
            home,
            state,
            work,
            _dir: dir,
        }
    }

    fn cache(&self) -> PathBuf {
        self.home.join("hub")
    }

    /// `dpgui fetch ARGS` with only the hub variables given here (plus a clean XDG layout).
    fn fetch(&self, server: &HubServer, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dpgui"));
        c.arg("fetch").args(args).current_dir(&self.work);
        for k in [
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "HF_TOKEN_PATH",
            "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE",
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN",
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            c.env_remove(k);
        }
        c.env("HF_ENDPOINT", server.endpoint())
            .env("HF_HOME", &self.home)
            .env("XDG_STATE_HOME", &self.state)
            .env("XDG_CONFIG_HOME", self.work.join("cfg"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("DPGUI_LOG", "trace");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    })
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

fn incomplete_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".incomplete") {
                out.push(p);
            }
        }
    }
    out
}

const CONFIG: &str = "\
# SDXL LoRA, the seed config
output_dir = '/data/out'   # runs go here
dataset = 'dataset.toml'
epochs = 10

[model]
type = 'sdxl'
# must be a local .safetensors file
checkpoint_path = 'stabilityai/stable-diffusion-xl-base-1.0'  # the classic mistake
dtype = 'bfloat16'
";

#[test]
fn fetch_for_a_key_downloads_the_suggested_file_and_writes_its_path_into_the_config() {
    let big = noise(300_000, 1);
    let server = HubServer::start(vec![sdxl_repo(&big)]);
    let env = Env::new();
    let cfg = env.work.join("train.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let out = env.fetch(
        &server,
        &[
            SDXL,
            "--into",
            cfg.to_str().unwrap(),
            "--key",
            "model.checkpoint_path",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let v = json(&out);
    let rd = repo_dir(&env.cache(), SDXL);
    let expected = rd
        .join("snapshots")
        .join(COMMIT)
        .join("sd_xl_base_1.0.safetensors");
    assert_eq!(v["ok"], true);
    assert_eq!(v["commit"], COMMIT);
    assert_eq!(v["local_path"], expected.to_str().unwrap());
    assert_eq!(
        v["files"].as_array().unwrap().len(),
        1,
        "only the suggested file: {v}"
    );
    assert_eq!(v["fetched_bytes"], 300_000);
    assert_eq!(v["config"]["key"], "model.checkpoint_path");

    // The config: that one value changed, every comment and the quoting style kept.
    let now = std::fs::read_to_string(&cfg).unwrap();
    let want = CONFIG.replace(
        "checkpoint_path = 'stabilityai/stable-diffusion-xl-base-1.0'",
        &format!("checkpoint_path = '{}'", expected.display()),
    );
    assert_eq!(now, want);

    // The cache as huggingface_hub reads it: refs/main holds the commit, the snapshot entry is
    // a relative symlink to the blob named by the ETag, the blob is the file, nothing partial.
    assert_eq!(
        std::fs::read_to_string(rd.join("refs/main")).unwrap(),
        COMMIT
    );
    let link = std::fs::read_link(&expected).unwrap();
    assert!(link.starts_with("../../blobs/"), "{}", link.display());
    let etag = link.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(etag.len(), 64);
    assert_eq!(std::fs::read(rd.join("blobs").join(&etag)).unwrap(), big);
    assert_eq!(std::fs::read(&expected).unwrap(), big);
    assert!(incomplete_files(&rd).is_empty());

    // A second fetch finds it in the cache: one GET of the bytes in all.
    let out = env.fetch(
        &server,
        &[SDXL, "sd_xl_base_1.0.safetensors", "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["files"][0]["state"], "cached");
    assert_eq!(v["fetched_bytes"], 0);
    assert_eq!(server.body_gets("/sd_xl_base_1.0.safetensors").len(), 1);
}

#[test]
fn a_directory_key_gets_the_whole_repo_and_the_snapshot_folder() {
    let server = HubServer::start(vec![sdxl_repo(&noise(5000, 9))]);
    let env = Env::new();
    let cfg = env.work.join("flux.toml");
    std::fs::write(
        &cfg,
        "[model]\ntype = \"flux\"\ndiffusers_path = \"\"  # to fill\n",
    )
    .unwrap();
    let out = env.fetch(
        &server,
        &[
            SDXL,
            "--into",
            cfg.to_str().unwrap(),
            "--key",
            "diffusers_path",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snap = repo_dir(&env.cache(), SDXL).join("snapshots").join(COMMIT);
    assert_eq!(text(&out.stdout).trim(), snap.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        format!(
            "[model]\ntype = \"flux\"\ndiffusers_path = \"{}\"  # to fill\n",
            snap.display()
        )
    );
    assert_eq!(
        std::fs::read(snap.join("unet/diffusion_pytorch_model.safetensors")).unwrap(),
        noise(2000, 4)
    );
    assert_eq!(
        std::fs::read(snap.join("model_index.json")).unwrap(),
        b"{\"_class_name\": \"x\"}"
    );
}

#[test]
fn listing_shows_files_with_sizes_and_the_suggestion() {
    let server = HubServer::start(vec![sdxl_repo(&noise(300_000, 1))]);
    let env = Env::new();
    let cfg = env.work.join("t.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let out = env.fetch(
        &server,
        &[
            SDXL,
            "--list",
            "--json",
            "--into",
            cfg.to_str().unwrap(),
            "--key",
            "checkpoint_path",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    let sizes: Vec<(String, u64)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("model_index.json".to_string(), 20),
            ("sd_xl_base_1.0.safetensors".to_string(), 300_000),
            (
                "sd_xl_offset_example-lora_1.0.safetensors".to_string(),
                1000
            ),
            ("unet/config.json".to_string(), 2),
            ("unet/diffusion_pytorch_model.safetensors".to_string(), 2000),
        ]
    );
    assert_eq!(v["total_bytes"], 20 + 300_000 + 1000 + 2 + 2000);
    assert_eq!(v["suggestions"][0]["path"], "sd_xl_base_1.0.safetensors");
    assert_eq!(v["suggestions"][0]["known"], true);
    // Listing downloads nothing and leaves the config alone.
    assert!(server.body_gets(".safetensors").is_empty());
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), CONFIG);
}

#[test]
fn a_connection_cut_mid_file_is_resumed_with_a_range_request() {
    let big = noise(1_000_000, 7);
    let server = HubServer::start(vec![sdxl_repo(&big)]);
    let env = Env::new();
    server.cut_next_body_after(250_000);
    let out = env.fetch(
        &server,
        &[SDXL, "sd_xl_base_1.0.safetensors", "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    let gets = server.body_gets("/sd_xl_base_1.0.safetensors");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=250000-"));
    assert_eq!(v["files"][0]["fetched"], 1_000_000);
    let local = PathBuf::from(v["local_path"].as_str().unwrap());
    assert_eq!(std::fs::read(&local).unwrap(), big);
    assert!(incomplete_files(&env.cache()).is_empty());
}

/// `path` takes about `written` bytes of disk (a few blocks more at most), not the whole file
/// reserved when its download started. Not checked on tmpfs, which keeps pages past the end
/// until the size changes, nor where the filesystem allocates bigger units than 64 KiB.
fn assert_disk_use_near(path: &Path, written: u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(fs) = rustix::fs::statfs(path) else {
        return;
    };
    if fs.f_type == 0x0102_1994 || fs.f_bsize as u64 > 64 << 10 {
        eprintln!("note: disk use of partial downloads not checked on this filesystem");
        return;
    }
    let on_disk = std::fs::metadata(path).unwrap().blocks() * 512;
    assert!(
        on_disk <= written.next_multiple_of(4096) + (64 << 10),
        "{on_disk} bytes on disk for {written} written"
    );
}

#[test]
fn a_dropped_download_fails_resumably_and_the_retry_continues_from_the_partial_file() {
    let big = noise(600_000, 11);
    let server = HubServer::start(vec![sdxl_repo(&big)]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = HubConfig::new(&server.endpoint(), dir.path());
    cfg.max_resumes = 0;
    let d = Downloader::new(cfg).unwrap();
    server.cut_next_body_after(100_000);
    let id = d.enqueue(Request::new(
        SDXL,
        Selection::Files(vec!["sd_xl_base_1.0.safetensors".into()]),
    ));
    let s = d.wait(id).unwrap();
    assert_eq!(s.state, JobState::Failed);
    let e = s.error.unwrap();
    assert_eq!(e.code(), "connection-dropped");
    assert!(e.resumable());
    assert!(e.to_string().contains("the next try resumes"), "{e}");
    let rd = repo_dir(dir.path(), SDXL);
    let partial = incomplete_files(&rd);
    assert_eq!(partial.len(), 1);
    assert_eq!(std::fs::read(&partial[0]).unwrap(), big[..100_000]);
    // The 600,000 bytes reserved at the start are not kept for the 100,000 written.
    assert_disk_use_near(&partial[0], 100_000);
    // Nothing at the final path.
    assert!(
        !rd.join("snapshots")
            .join(COMMIT)
            .join("sd_xl_base_1.0.safetensors")
            .exists()
    );

    let again = d.retry(id).unwrap();
    let s = d.wait(again).unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(s.files[0].resumed_from, 100_000);
    assert_eq!(s.files[0].fetched, 500_000);
    assert_eq!(
        server
            .body_gets("/sd_xl_base_1.0.safetensors")
            .last()
            .unwrap()
            .range
            .as_deref(),
        Some("bytes=100000-")
    );
    assert_eq!(std::fs::read(s.local_path.unwrap()).unwrap(), big);
    assert!(incomplete_files(&rd).is_empty());
}

#[test]
fn a_running_download_can_be_cancelled_with_progress_seen_and_resumed() {
    const LEN: u64 = 16 << 20;
    let repo = RepoSpec::new(
        "big/model",
        COMMIT,
        vec![("w.safetensors", Content::Pattern(LEN))],
    );
    let server = HubServer::start(vec![repo]);
    // About 13 MB/s: the file takes over a second, long enough to be caught mid-way.
    server.set_pace(Some(Duration::from_millis(5)));
    let dir = tempfile::tempdir().unwrap();
    let d = Downloader::new(HubConfig::new(&server.endpoint(), dir.path())).unwrap();
    let id = d.enqueue(Request::new(
        "big/model",
        Selection::Files(vec!["w.safetensors".into()]),
    ));
    // Progress is readable from this thread while the worker downloads.
    let seen = loop {
        let s = d.wait_update(id, Duration::from_secs(30)).unwrap();
        assert!(!s.state.finished(), "{s:?}");
        if s.files[0].done > 0 {
            break s;
        }
    };
    assert_eq!(seen.files[0].size, Some(LEN));
    assert_eq!(seen.total, LEN);
    assert_eq!(seen.files[0].state, hub::FileState::Downloading);
    assert!(d.cancel(id));
    let s = d.wait(id).unwrap();
    assert_eq!(s.state, JobState::Cancelled);
    assert_eq!(s.error.as_ref().map(|e| e.code()), Some("cancelled"));
    let partial = incomplete_files(dir.path());
    assert_eq!(partial.len(), 1);
    let meta = std::fs::metadata(&partial[0]).unwrap();
    let have = meta.len();
    assert!(have > 0 && have < LEN, "{have}");
    // The disk reserved for the whole file at the start is given back on the cancel: the
    // partial file holds its bytes, not 16 MiB.
    assert_disk_use_near(&partial[0], have);

    server.set_pace(None);
    let s = d.wait(d.retry(id).unwrap()).unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(s.files[0].resumed_from, have);
    assert_eq!(s.files[0].fetched, LEN - have);
    let got = std::fs::read(s.local_path.unwrap()).unwrap();
    assert_eq!(got.len() as u64, LEN);
    let first_bad = got
        .iter()
        .enumerate()
        .find(|(i, b)| **b != pattern_byte(*i as u64));
    assert_eq!(first_bad.map(|(i, _)| i), None);
    assert!(incomplete_files(dir.path()).is_empty());
}

#[test]
fn gated_forbidden_missing_and_rate_limited_each_get_their_message() {
    let server = HubServer::start(vec![
        sdxl_repo(&noise(10, 1)),
        RepoSpec::new(
            "black-forest-labs/FLUX.1-dev",
            COMMIT2,
            vec![("a.json", Content::Bytes(b"{}".to_vec()))],
        )
        .with_access(Access::Token("hf_right".into())),
        RepoSpec::new(
            "org/awaiting",
            COMMIT2,
            vec![("a.json", Content::Bytes(b"{}".to_vec()))],
        )
        .with_access(Access::Forbidden),
        RepoSpec::new(
            "org/busy",
            COMMIT2,
            vec![("a.json", Content::Bytes(b"{}".to_vec()))],
        )
        .with_access(Access::RateLimited),
    ]);
    let env = Env::new();
    let run = |args: &[&str]| {
        let out = env.fetch(&server, args, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stderr)
    };
    let ep = server.endpoint();
    assert_eq!(
        run(&["black-forest-labs/FLUX.1-dev", "a.json"]).trim(),
        format!(
            "dpgui fetch: black-forest-labs/FLUX.1-dev needs a token with access: accept the \
             licence at {ep}/black-forest-labs/FLUX.1-dev and set HF_TOKEN"
        )
    );
    let e = run(&["org/awaiting", "a.json"]);
    assert!(
        e.contains("org/awaiting is gated and this token has no access yet (403)"),
        "{e}"
    );
    let e = run(&["org/nothing-here", "a.json"]);
    assert!(
        e.contains("no repo org/nothing-here on the hub (404)"),
        "{e}"
    );
    let e = run(&[SDXL, "no_such_file.safetensors"]);
    assert!(
        e.contains(&format!(
            "{SDXL} has no file no_such_file.safetensors at revision main (404)"
        )),
        "{e}"
    );
    let e = run(&[SDXL, "model_index.json", "--revision", "v9"]);
    assert!(e.contains("has no branch, tag or commit v9 (404)"), "{e}");
    let e = run(&["org/busy", "a.json"]);
    assert!(
        e.contains("rate-limiting requests (429): try again in 7 s"),
        "{e}"
    );

    // The JSON form carries the code; a listing of a missing repo fails the same way.
    let out = env.fetch(&server, &["org/nothing-here", "--list", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["code"], "repo-not-found");
    let out = env.fetch(&server, &["black-forest-labs/FLUX.1-dev", "--json"], &[]);
    assert_eq!(json(&out)["error"]["code"], "needs-token");
    // Nothing half-written anywhere.
    assert!(incomplete_files(&env.cache()).is_empty());

    // Bad arguments are exit status 2, before any request.
    let before = server.requests().len();
    for args in [
        &["not a repo"][..],
        &[SDXL, "../etc/passwd"],
        &[SDXL, "--key", "x"],
    ] {
        let out = env.fetch(&server, args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(server.requests().len(), before);
}

#[test]
fn offline_mode_uses_the_cache_and_names_what_is_missing() {
    let big = noise(40_000, 5);
    let server = HubServer::start(vec![sdxl_repo(&big)]);
    let env = Env::new();
    let out = env.fetch(&server, &[SDXL, "sd_xl_base_1.0.safetensors"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let online_path = text(&out.stdout);
    let before = server.requests().len();

    // Hit: the same path, not one request.
    let out = env.fetch(
        &server,
        &[SDXL, "sd_xl_base_1.0.safetensors"],
        &[("HF_HUB_OFFLINE", "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), online_path);
    let out = env.fetch(
        &server,
        &[SDXL, "sd_xl_base_1.0.safetensors", "--offline"],
        &[],
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), online_path);

    // Miss: every missing file named at once.
    let out = env.fetch(
        &server,
        &[
            SDXL,
            "sd_xl_base_1.0.safetensors",
            "unet/config.json",
            "model_index.json",
            "--json",
        ],
        &[("HF_HUB_OFFLINE", "1")],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["code"], "offline-miss");
    assert_eq!(
        v["error"]["message"],
        format!(
            "offline mode (HF_HUB_OFFLINE or --offline): not in the cache: {SDXL}/unet/config.json, \
             {SDXL}/model_index.json"
        )
    );
    let out = env.fetch(&server, &["other/repo", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("other/repo is not in the cache"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        server.requests().len(),
        before,
        "offline mode made requests"
    );
}

#[test]
fn the_token_is_sent_as_bearer_only_to_the_hub_and_never_shown() {
    let repo = RepoSpec::new(
        "black-forest-labs/FLUX.1-dev",
        COMMIT2,
        vec![
            ("model_index.json", Content::Bytes(b"{}".to_vec())),
            ("flux1-dev.safetensors", Content::Bytes(noise(70_000, 2))),
        ],
    )
    .with_access(Access::Token(SECRET.into()));
    let server = HubServer::start(vec![repo]);
    // Large files come from a CDN on another host name, as on the real hub.
    server.set_cdn_redirect(true);
    let env = Env::new();
    let mut outputs = Vec::new();
    for args in [
        &["black-forest-labs/FLUX.1-dev", "--json"][..],
        &["black-forest-labs/FLUX.1-dev", "--list"],
        &["black-forest-labs/FLUX.1-dev"],
        &["black-forest-labs/FLUX.1-dev", "nope.bin", "--json"],
    ] {
        let out = env.fetch(&server, args, &[("HF_TOKEN", SECRET)]);
        outputs.push(text(&out.stdout) + &text(&out.stderr));
    }
    let snap = repo_dir(&env.cache(), "black-forest-labs/FLUX.1-dev")
        .join("snapshots")
        .join(COMMIT2);
    assert_eq!(
        std::fs::read(snap.join("flux1-dev.safetensors")).unwrap(),
        noise(70_000, 2)
    );

    let reqs = server.requests();
    let bearer = format!("Bearer {SECRET}");
    let to_hub: Vec<_> = reqs
        .iter()
        .filter(|r| !r.path.starts_with("/cdn/"))
        .collect();
    let to_cdn: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .collect();
    assert!(!to_hub.is_empty() && !to_cdn.is_empty());
    assert!(
        to_hub
            .iter()
            .all(|r| r.authorization.as_deref() == Some(bearer.as_str())),
        "{to_hub:?}"
    );
    assert!(
        to_cdn.iter().all(|r| r.authorization.is_none()),
        "the token went to the CDN: {to_cdn:?}"
    );

    // Not in stdout, stderr, --json, nor the trace-level log.
    for o in &outputs {
        assert!(!o.contains(SECRET), "token in output: {o}");
    }
    let log = std::fs::read_to_string(env.state.join("dpgui/logs/dpgui.log")).unwrap_or_default();
    assert!(!log.is_empty(), "the trace log was written");
    assert!(!log.contains(SECRET), "token in the log");
    // Nor in anything written to the cache or the state dir.
    for root in [&env.home, &env.state] {
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_symlink() {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    assert!(!text(&b).contains(SECRET), "token in {}", p.display());
                }
            }
        }
    }
}

#[test]
fn hf_token_path_and_the_hf_home_token_file_are_honoured() {
    let repo = RepoSpec::new(
        "org/gated",
        COMMIT2,
        vec![("a.bin", Content::Bytes(noise(100, 8)))],
    )
    .with_access(Access::Token(SECRET.into()));
    let server = HubServer::start(vec![repo]);
    let env = Env::new();
    let tok = env.work.join("my-token");
    std::fs::write(&tok, format!("{SECRET}\n")).unwrap();
    let out = env.fetch(
        &server,
        &["org/gated", "a.bin"],
        &[("HF_TOKEN_PATH", tok.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {SECRET}")))
    );

    // `hf auth login` writes $HF_HOME/token.
    let env2 = Env::new();
    std::fs::create_dir_all(&env2.home).unwrap();
    std::fs::write(env2.home.join("token"), SECRET).unwrap();
    let out = env2.fetch(&server, &["org/gated", "a.bin", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(SECRET));
}

#[test]
fn a_chosen_directory_gets_the_files_and_a_second_fetch_skips_them() {
    let server = HubServer::start(vec![sdxl_repo(&noise(3000, 6))]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("models/sdxl");
    let cfg = HubConfig::new(&server.endpoint(), &dir.path().join("unused-cache"));
    let d = Downloader::new(cfg).unwrap();
    let req = Request {
        repo: SDXL.into(),
        revision: "main".into(),
        selection: Selection::Folder("unet".into()),
        dest: Dest::Dir(target.clone()),
    };
    let s = d.wait(d.enqueue(req.clone())).unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(s.local_path.as_deref(), Some(target.join("unet").as_path()));
    assert_eq!(
        std::fs::read(target.join("unet/diffusion_pytorch_model.safetensors")).unwrap(),
        noise(2000, 4)
    );
    assert!(!target.join("model_index.json").exists(), "only the folder");
    assert!(!dir.path().join("unused-cache").exists());
    let gets = server.body_gets(".safetensors").len();
    let s = d.wait(d.enqueue(req)).unwrap();
    assert_eq!(s.state, JobState::Done);
    assert!(
        s.files.iter().all(|f| f.state == hub::FileState::Cached),
        "{:?}",
        s.files
    );
    assert_eq!(server.body_gets(".safetensors").len(), gets);
}

#[test]
fn a_chosen_directory_keeps_its_locks_and_never_replaces_a_file_it_did_not_write() {
    let server = HubServer::start(vec![sdxl_repo(&noise(3000, 6))]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sdxl");
    let cfg = HubConfig::new(&server.endpoint(), &dir.path().join("unused-cache"));
    let d = Downloader::new(cfg).unwrap();
    let req = Request {
        repo: SDXL.into(),
        revision: "main".into(),
        selection: Selection::Files(vec!["unet/config.json".into()]),
        dest: Dest::Dir(target.clone()),
    };
    let config = target.join("unet/config.json");
    let bookkeeping = target.join(".cache/huggingface/download/unet");
    let metadata = bookkeeping.join("config.json.metadata");

    // A file of the user's at that path is refused, and left as it was.
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, b"mine").unwrap();
    let s = d.wait(d.enqueue(req.clone())).unwrap();
    assert_eq!(s.state, JobState::Failed);
    let e = s.error.unwrap().to_string();
    assert_eq!(
        e,
        format!(
            "{} exists and was not downloaded by dpgui: move it or choose another directory",
            config.display()
        )
    );
    assert_eq!(std::fs::read(&config).unwrap(), b"mine");
    assert!(server.body_gets("config.json").is_empty());

    // Moved away, the download goes through and its lock file stays.
    std::fs::remove_file(&config).unwrap();
    let s = d.wait(d.enqueue(req.clone())).unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(std::fs::read(&config).unwrap(), b"{}");
    let locks: Vec<PathBuf> = std::fs::read_dir(&bookkeeping)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let gets = server.body_gets("config.json").len();
    assert_eq!(gets, 1);

    // Another downloader finishes the file while this one waits for the lock: once it has the
    // lock, it finds the file complete and fetches nothing.
    let meta_text = std::fs::read_to_string(&metadata).unwrap();
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_file(&metadata).unwrap();
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&locks[0])
        .unwrap();
    held.lock().unwrap();
    let id = d.enqueue(req.clone());
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&config, b"{}").unwrap();
    // Commit and ETag as before, stamped now: what the other downloader writes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let kept: Vec<&str> = meta_text.lines().take(2).collect();
    std::fs::write(&metadata, format!("{}\n{now}\n", kept.join("\n"))).unwrap();
    held.unlock().unwrap();
    let s = d.wait(id).unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(s.fetched, 0);
    assert_eq!(server.body_gets("config.json").len(), gets);

    // A downloaded file the user changed since is theirs now: refused too.
    std::fs::write(&config, b"{\"edited\": 1}").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&config)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let s = d.wait(d.enqueue(req)).unwrap();
    assert_eq!(s.state, JobState::Failed);
    assert!(
        s.error
            .unwrap()
            .to_string()
            .contains("was not downloaded by dpgui"),
        "refused"
    );
    assert_eq!(std::fs::read(&config).unwrap(), b"{\"edited\": 1}");
    assert_eq!(server.body_gets("config.json").len(), gets);
}

#[test]
fn the_library_lists_sizes_and_scans_and_deletes_the_cache() {
    let server = HubServer::start(vec![sdxl_repo(&noise(12_345, 1))]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = HubConfig::new(&server.endpoint(), dir.path()).with_token(Token::new(SECRET));
    let l = hub::list_files_blocking(&cfg, SDXL, "main").unwrap();
    assert!(!l.from_cache);
    assert_eq!(l.total_bytes(), 20 + 12_345 + 1000 + 2 + 2000);
    let d = Downloader::new(cfg.clone()).unwrap();
    let s = d
        .wait(d.enqueue(Request::new(SDXL, Selection::All)))
        .unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    assert_eq!(s.total, 20 + 12_345 + 1000 + 2 + 2000);
    assert_eq!(s.done, s.total);
    drop(server);
    // The hub is gone: the cached snapshot stands in for the listing.
    let l = hub::list_files_blocking(&cfg, SDXL, "main").unwrap();
    assert!(l.from_cache);
    assert_eq!(l.files.len(), 5);
    let repos = hub::scan(dir.path()).unwrap();
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0].repo, SDXL);
    assert_eq!(repos[0].size, 20 + 12_345 + 1000 + 2 + 2000);
    assert_eq!(repos[0].files, 5);
    let freed = hub::delete_repo(dir.path(), &repos[0].key()).unwrap();
    assert!(freed >= repos[0].size);
    assert!(hub::scan(dir.path()).unwrap().is_empty());
}

/// A Python with huggingface_hub: `DPGUI_TEST_HF_PYTHON`, else `target/test-venv-hf` made once
/// with pip. None (with a printed note) when it cannot be had; under CI that is a failure.
fn hf_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DPGUI_TEST_HF_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => manifest.join(d),
        _ => manifest.join("target"),
    };
    let venv = target.join("test-venv-hf");
    let python = venv.join("bin/python");
    let marker = venv.join(".dpgui-complete");
    if marker.exists() {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .output();
    // Tried again after a pause when the registry does not answer (DNS, a proxy).
    let pip = made.ok().filter(|o| o.status.success()).and_then(|_| {
        let mut last = None;
        for attempt in 1..=4 {
            let o = Command::new(&python)
                .args(["-m", "pip", "install", "-q", "huggingface_hub"])
                .output()
                .ok()?;
            if o.status.success() {
                return Some(o);
            }
            last = Some(o);
            if attempt < 4 {
                std::thread::sleep(std::time::Duration::from_secs(30));
            }
        }
        last
    });
    match pip {
        Some(o) if o.status.success() => {
            std::fs::write(&marker, b"").unwrap();
            Some(python)
        }
        other => {
            let why = other
                .map(|o| text(&o.stderr))
                .unwrap_or_else(|| "no python3 -m venv".into());
            assert!(
                std::env::var("CI").is_err(),
                "CI: cannot install huggingface_hub: {why}"
            );
            eprintln!(
                "skipping: huggingface_hub cannot be installed here ({})",
                why.trim()
            );
            None
        }
    }
}

#[test]
fn python_huggingface_hub_and_dpgui_share_one_cache() {
    let Some(python) = hf_python() else { return };
    let big = noise(50_000, 12);
    let server = HubServer::start(vec![sdxl_repo(&big)]);
    let env = Env::new();
    let out = env.fetch(&server, &[SDXL, "sd_xl_base_1.0.safetensors"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ours = text(&out.stdout).trim().to_string();

    // Python reads what dpgui wrote, offline; then downloads a file of its own from the server.
    let script = r#"
import json, sys
from huggingface_hub import hf_hub_download, scan_cache_dir, try_to_load_from_cache
repo = sys.argv[1]
hit = try_to_load_from_cache(repo, "sd_xl_base_1.0.safetensors")
info = scan_cache_dir()
r = [r for r in info.repos if r.repo_id == repo][0]
theirs = hf_hub_download(repo, "unet/diffusion_pytorch_model.safetensors")
print(json.dumps({"hit": str(hit), "size": r.size_on_disk, "refs": sorted(r.refs),
                  "warnings": [str(w) for w in info.warnings], "theirs": theirs}))
"#;
    let py = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(SDXL)
        .env("HF_HUB_CACHE", env.cache())
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    assert!(py.status.success(), "python: {}", text(&py.stderr));
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(v["hit"], ours);
    assert_eq!(v["size"], 50_000);
    assert_eq!(v["refs"], serde_json::json!(["main"]));
    assert_eq!(v["warnings"], serde_json::json!([]));

    // dpgui finds Python's download offline, at Python's path.
    let out = env.fetch(
        &server,
        &[
            SDXL,
            "unet/diffusion_pytorch_model.safetensors",
            "--offline",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), v["theirs"].as_str().unwrap());
    assert_eq!(
        std::fs::read(text(&out.stdout).trim()).unwrap(),
        noise(2000, 4)
    );
}

/// The files of one job after the first come several at a time (a CDN limits each connection),
/// all at the commit the first one resolved to, each byte-identical; a cancel stops them all.
#[test]
fn the_files_of_a_whole_repo_download_several_at_a_time() {
    const LEN: u64 = 2 << 20;
    let names = [
        "model_index.json",
        "a.safetensors",
        "b.safetensors",
        "c.safetensors",
        "d.safetensors",
    ];
    let repo = RepoSpec::new(
        "multi/repo",
        COMMIT,
        names
            .iter()
            .map(|n| {
                (
                    *n,
                    Content::Pattern(if n.ends_with(".json") { 100 } else { LEN }),
                )
            })
            .collect(),
    );
    let server = HubServer::start(vec![repo]);
    // ~13 MB/s per connection: each 2 MiB file takes ~160 ms, long enough to overlap.
    server.set_pace(Some(Duration::from_millis(5)));
    let dir = tempfile::tempdir().unwrap();
    let d = Downloader::new(HubConfig::new(&server.endpoint(), dir.path())).unwrap();
    let s = d
        .wait(d.enqueue(Request::new("multi/repo", Selection::All)))
        .unwrap();
    assert_eq!(s.state, JobState::Done, "{:?}", s.error);
    // The server counts a body until its thread has written the last byte and moved on, so a
    // body just finished may overlap the next one by a moment: one after another could show 2,
    // never 3; four at a time shows 4, at most 5.
    let most = server.max_bodies_at_once();
    assert!(
        most >= 3,
        "files were fetched one after another (at most {most} at once)"
    );
    assert!(most <= 5, "{most} at once: not bounded");
    let snap = s.local_path.unwrap();
    for n in names.iter().filter(|n| n.ends_with(".safetensors")) {
        let got = std::fs::read(snap.join(n)).unwrap();
        assert_eq!(got.len() as u64, LEN, "{n}");
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, b)| *b == pattern_byte(i as u64)),
            "{n} differs"
        );
    }
    assert!(incomplete_files(dir.path()).is_empty());
}
