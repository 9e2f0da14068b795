//! The loopback hub of the tests (tests/common/hub_server.rs) as a program, for
//! benches/fetch.sh: serves `bench/big` with one pattern file `model.safetensors` of SIZE bytes.
//!
//! Usage: hub_serve [SIZE] (default 2 GiB); prints `http://127.0.0.1:PORT` once listening, then
//! serves until killed.

#[path = "../tests/common/hub_server.rs"]
mod hub_server;

use hub_server::{Content, HubServer, RepoSpec};

fn main() {
    let size: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 30);
    let repo = RepoSpec::new(
        "bench/big",
        "5f0b3c1d2e4a69788796a5b4c3d2e1f0a9b8c7d6",
        vec![("model.safetensors", Content::Pattern(size))],
    );
    let server = HubServer::start(vec![repo]);
    println!("{}", server.endpoint());
    loop {
        std::thread::park();
    }
}
