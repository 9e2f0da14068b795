//! A loopback HTTP server that speaks the Hugging Face Hub's file protocol, std only:
//! HEAD/GET `/{repo}/resolve/{rev}/{path}` with ETag, X-Repo-Commit, Content-Length and Range,
//! the tree listing `/api/models/{repo}/tree/{rev}` (what hf-hub lists with) and
//! `/api/models/{repo}/revision/{rev}`, per-repo 401/403/404/429 with the hub's X-Error-Code,
//! an optional CDN-style redirect to another host name (as the hub does for large files), and a
//! "drop the connection after N bytes" switch. It logs every request (method, path, Range,
//! Authorization) for the tests to check. One thread per connection, `Connection: close`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    /// `Authorization: Bearer <token>` or 401 (X-Error-Code: GatedRepo), like a gated repo.
    Token(String),
    /// 403 with X-Error-Code: GatedRepo: a token without access.
    Forbidden,
    /// 429 with Retry-After: 7.
    RateLimited,
}

#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// `len` bytes of [`pattern_byte`], generated as they are sent (the 2 GB benchmark file).
    Pattern(u64),
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Pattern(n) => *n,
        }
    }
}

/// Byte `i` of a pattern file: a period of 1 MiB + 7 bytes, so no two MiB blocks look alike.
pub const PATTERN_PERIOD: u64 = (1 << 20) + 7;
pub fn pattern_byte(i: u64) -> u8 {
    let i = i % PATTERN_PERIOD;
    (i.wrapping_mul(2_654_435_761) >> 11) as u8
}

#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub id: String,
    /// 40 hex digits.
    pub commit: String,
    pub access: Access,
    pub files: Vec<(String, Content)>,
}

impl RepoSpec {
    pub fn new(id: &str, commit: &str, files: Vec<(&str, Content)>) -> RepoSpec {
        RepoSpec {
            id: id.into(),
            commit: commit.into(),
            access: Access::Public,
            files: files.into_iter().map(|(p, c)| (p.to_string(), c)).collect(),
        }
    }

    pub fn with_access(mut self, a: Access) -> RepoSpec {
        self.access = a;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct State {
    repos: Mutex<Vec<RepoSpec>>,
    log: Mutex<Vec<Seen>>,
    /// The next file body sent is cut after this many bytes (then the switch turns off).
    cut_after: Mutex<Option<u64>>,
    /// Answer resolve requests with a 302 to `http://localhost:PORT/cdn/...`, as the hub does
    /// for large files (another host: clients must not send the token there).
    cdn_redirect: AtomicBool,
    /// Pause after every 64 KiB of a pattern file: a slow link, so a test can act mid-file.
    pace: Mutex<Option<std::time::Duration>>,
    port: Mutex<u16>,
    /// File bodies being sent now, and the most at once so far.
    bodies_now: std::sync::atomic::AtomicUsize,
    bodies_max: std::sync::atomic::AtomicUsize,
}

/// Counts a file body in flight for as long as it lives.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn new(s: &'a State) -> InFlight<'a> {
        let now = s.bodies_now.fetch_add(1, Ordering::SeqCst) + 1;
        s.bodies_max.fetch_max(now, Ordering::SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.bodies_now.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct HubServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HubServer {
    pub fn start(repos: Vec<RepoSpec>) -> HubServer {
        HubServer::start_on("127.0.0.1:0", repos)
    }

    pub fn start_on(addr: &str, repos: Vec<RepoSpec>) -> HubServer {
        let listener = TcpListener::bind(addr).expect("bind the loopback hub");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        *state.repos.lock().unwrap() = repos;
        *state.port.lock().unwrap() = addr.port();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || handle(conn, &s));
            }
        });
        HubServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut_next_body_after(&self, n: u64) {
        *self.state.cut_after.lock().unwrap() = Some(n);
    }

    pub fn set_pace(&self, per_64k: Option<std::time::Duration>) {
        *self.state.pace.lock().unwrap() = per_64k;
    }

    pub fn set_cdn_redirect(&self, on: bool) {
        self.state.cdn_redirect.store(on, Ordering::SeqCst);
    }

    /// The most file bodies the server was sending at the same time.
    pub fn max_bodies_at_once(&self) -> usize {
        self.state.bodies_max.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    /// GETs of file bytes (resolve or CDN) whose path ends with `suffix`.
    pub fn body_gets(&self, suffix: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| {
                s.method == "GET" && !s.path.starts_with("/api/") && s.path.ends_with(suffix)
            })
            .collect()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 64 hex digits from the content's identity, like the hub's sha256 ETags of LFS files.
fn etag_of(repo: &str, path: &str, c: &Content) -> String {
    let mut out = String::new();
    for seed in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        let mut eat = |b: &[u8]| {
            for x in b {
                h ^= *x as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        eat(repo.as_bytes());
        eat(path.as_bytes());
        match c {
            Content::Bytes(b) => eat(b),
            Content::Pattern(n) => eat(&n.to_le_bytes()),
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, headers: &[(&str, String)], body: &str) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        _ => "Other",
    }
}

fn write_head(
    w: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    len: u64,
) -> std::io::Result<()> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    w.write_all(h.as_bytes())
}

fn handle(mut conn: TcpStream, state: &State) {
    let _ = conn.set_nodelay(true);
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(read_half);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut range = None;
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let (path, _query) = target.split_once('?').unwrap_or((&target, ""));
    state.log.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.to_string(),
        range: range.clone(),
        authorization: authorization.clone(),
    });
    let repos = state.repos.lock().unwrap().clone();
    let port = *state.port.lock().unwrap();

    // The CDN: bytes only, no access checks (signed URLs on the real one).
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let found = repos.iter().find_map(|repo| {
            let file = rest.strip_prefix(&format!("{}/", repo.id))?;
            let file = percent_decode(file);
            repo.files
                .iter()
                .find(|(p, _)| *p == file)
                .map(|(_, c)| c.clone())
        });
        match found {
            Some(c) => send_file(&mut conn, state, &method, &c, range.as_deref(), &[]),
            None => {
                let rep = reply(404, &[], "no such object");
                let _ = write_head(&mut conn, rep.status, &rep.headers, rep.body.len() as u64);
                let _ = conn.write_all(&rep.body);
            }
        }
        return;
    }

    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (api, repo_id, rest): (Option<&str>, String, Vec<&str>) =
        if segs.len() >= 5 && segs[0] == "api" && segs[1] == "models" {
            (
                Some(segs[4]),
                format!("{}/{}", segs[2], segs[3]),
                segs[5..].to_vec(),
            )
        } else if segs.len() >= 4 && segs[2] == "resolve" {
            (None, format!("{}/{}", segs[0], segs[1]), segs[3..].to_vec())
        } else {
            let rep = reply(404, &[], "not a hub route");
            let _ = write_head(&mut conn, rep.status, &rep.headers, rep.body.len() as u64);
            let _ = conn.write_all(&rep.body);
            return;
        };

    let rep = (|| {
        let Some(repo) = repos.iter().find(|r| r.id == repo_id) else {
            return reply(
                404,
                &[("X-Error-Code", "RepoNotFound".into())],
                "{\"error\":\"Repository not found\"}",
            );
        };
        match &repo.access {
            Access::Public => {}
            Access::Token(t) if authorization.as_deref() == Some(&format!("Bearer {t}")) => {}
            Access::Token(_) => {
                return reply(
                    401,
                    &[("X-Error-Code", "GatedRepo".into())],
                    "{\"error\":\"Access to this model is restricted\"}",
                );
            }
            Access::Forbidden => {
                return reply(
                    403,
                    &[("X-Error-Code", "GatedRepo".into())],
                    "{\"error\":\"Your request to access this repo is awaiting review\"}",
                );
            }
            Access::RateLimited => {
                return reply(
                    429,
                    &[("Retry-After", "7".into())],
                    "{\"error\":\"slow down\"}",
                );
            }
        }
        let Some(rev) = rest.first().map(|r| percent_decode(r)) else {
            return reply(404, &[], "no revision");
        };
        if rev != "main" && rev != repo.commit {
            return reply(
                404,
                &[("X-Error-Code", "RevisionNotFound".into())],
                "{\"error\":\"Invalid rev id\"}",
            );
        }
        let commit = ("X-Repo-Commit", repo.commit.clone());
        match api {
            Some("tree") => {
                let prefix = rest[1..]
                    .iter()
                    .map(|s| percent_decode(s))
                    .collect::<Vec<_>>()
                    .join("/");
                let mut dirs: Vec<String> = Vec::new();
                let mut entries = Vec::new();
                for (p, c) in &repo.files {
                    if !prefix.is_empty() && !p.starts_with(&format!("{prefix}/")) {
                        continue;
                    }
                    let mut d = p.as_str();
                    while let Some((parent, _)) = d.rsplit_once('/') {
                        if !dirs.iter().any(|x| x == parent) {
                            dirs.push(parent.to_string());
                        }
                        d = parent;
                    }
                    entries.push(serde_json::json!({
                        "type": "file", "oid": etag_of(&repo.id, p, c)[..40].to_string(),
                        "size": c.len(), "path": p,
                    }));
                }
                for d in dirs {
                    entries.push(
                        serde_json::json!({"type": "directory", "oid": "0".repeat(40), "path": d}),
                    );
                }
                reply(
                    200,
                    &[("Content-Type", "application/json".into()), commit],
                    &serde_json::Value::Array(entries).to_string(),
                )
            }
            Some("revision") => {
                let siblings: Vec<_> = repo
                    .files
                    .iter()
                    .map(|(p, _)| serde_json::json!({"rfilename": p}))
                    .collect();
                let body =
                    serde_json::json!({"id": repo.id, "sha": repo.commit, "siblings": siblings});
                reply(
                    200,
                    &[("Content-Type", "application/json".into()), commit],
                    &body.to_string(),
                )
            }
            Some(_) => reply(404, &[], "unknown api"),
            None => {
                let file = rest[1..]
                    .iter()
                    .map(|s| percent_decode(s))
                    .collect::<Vec<_>>()
                    .join("/");
                let Some((p, c)) = repo.files.iter().find(|(p, _)| *p == file) else {
                    return reply(
                        404,
                        &[("X-Error-Code", "EntryNotFound".into()), commit],
                        "{\"error\":\"Entry not found\"}",
                    );
                };
                let etag = etag_of(&repo.id, p, c);
                if state.cdn_redirect.load(Ordering::SeqCst) {
                    return reply(
                        302,
                        &[
                            (
                                "Location",
                                format!("http://localhost:{port}/cdn/{}/{p}", repo.id),
                            ),
                            ("X-Linked-Etag", format!("\"{etag}\"")),
                            ("X-Linked-Size", c.len().to_string()),
                            commit,
                        ],
                        "",
                    );
                }
                // Marks a file reply: sent by send_file, not as a small body.
                Reply {
                    status: 0,
                    headers: vec![
                        ("ETag".into(), format!("\"{etag}\"")),
                        ("X-Repo-Commit".into(), repo.commit.clone()),
                    ],
                    body: p.as_bytes().to_vec(),
                }
            }
        }
    })();

    if rep.status == 0 {
        let file = String::from_utf8_lossy(&rep.body).into_owned();
        let repo = repos.iter().find(|r| r.id == repo_id).unwrap();
        let c = repo
            .files
            .iter()
            .find(|(p, _)| *p == file)
            .unwrap()
            .1
            .clone();
        send_file(
            &mut conn,
            state,
            &method,
            &c,
            range.as_deref(),
            &rep.headers,
        );
        return;
    }
    let body_len = rep.body.len() as u64;
    let _ = write_head(&mut conn, rep.status, &rep.headers, body_len);
    if method != "HEAD" {
        let _ = conn.write_all(&rep.body);
    }
    drain(&mut r);
}

/// Reads what the client may still send, so closing does not reset the connection early.
fn drain(r: &mut BufReader<TcpStream>) {
    let _ = r.get_ref().set_nonblocking(true);
    let mut buf = [0u8; 1024];
    let _ = r.read(&mut buf);
}

fn send_file(
    conn: &mut TcpStream,
    state: &State,
    method: &str,
    c: &Content,
    range: Option<&str>,
    extra: &[(String, String)],
) {
    let len = c.len();
    let mut headers: Vec<(String, String)> = extra.to_vec();
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    let (status, start, end) = match range.and_then(|r| r.strip_prefix("bytes=")) {
        Some(spec) => {
            let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
            let start: u64 = a.trim().parse().unwrap_or(u64::MAX);
            let end: u64 = if b.trim().is_empty() {
                len.saturating_sub(1)
            } else {
                b.trim().parse().unwrap_or(0)
            };
            if start >= len || end < start {
                headers.push(("Content-Range".into(), format!("bytes */{len}")));
                let _ = write_head(conn, 416, &headers, 0);
                return;
            }
            let end = end.min(len - 1);
            headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{len}")));
            (206, start, end + 1)
        }
        None => (200, 0, len),
    };
    if write_head(conn, status, &headers, end - start).is_err() || method == "HEAD" {
        return;
    }
    let cut = if method == "GET" {
        state.cut_after.lock().unwrap().take()
    } else {
        None
    };
    let stop_at = cut.map(|n| (start + n).min(end)).unwrap_or(end);
    let _in_flight = (method == "GET").then(|| InFlight::new(state));
    let mut pos = start;
    match c {
        Content::Bytes(b) => {
            let _ = conn.write_all(&b[start as usize..stop_at as usize]);
            pos = stop_at;
        }
        Content::Pattern(_) => {
            // One period of the pattern, written in slices: no per-byte work while serving.
            let period: Vec<u8> = (0..PATTERN_PERIOD).map(pattern_byte).collect();
            let pace = *state.pace.lock().unwrap();
            let slice = if pace.is_some() { 64 << 10 } else { 1 << 20 };
            while pos < stop_at {
                let off = (pos % PATTERN_PERIOD) as usize;
                let n = ((stop_at - pos) as usize)
                    .min(period.len() - off)
                    .min(slice);
                if conn.write_all(&period[off..off + n]).is_err() {
                    return;
                }
                pos += n as u64;
                if let Some(p) = pace
                    && pos < stop_at
                {
                    std::thread::sleep(p);
                }
            }
        }
    }
    if cut.is_some() && pos < end {
        // The "dropped connection": the client gets fewer bytes than Content-Length promised.
        let _ = conn.flush();
        let _ = conn.shutdown(Shutdown::Both);
    }
}
