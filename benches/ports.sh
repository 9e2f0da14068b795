#!/usr/bin/env bash
# "Who listens on port 29500?" three ways, timed side by side with hyperfine on a loaded box:
#   dpgui ports --port 29500 --json   (system::ports: /proc/net/tcp{,6} + /proc/*/fd)
#   ss -ltnp 'sport = :29500'         (netlink sock_diag + /proc/*/fd for -p)
#   lsof -nP -iTCP:29500 -sTCP:LISTEN (/proc/*/fd + stat of every fd)
#
# Load: NPROCS (2,000) extra processes holding FDS (10) sockets each, plus one listener on PORT.
# Everything runs in a private network namespace (unshare --net, needs root), so the host's own
# 29500 is never touched and /proc/net/tcp holds only what this script creates.
#
# Usage (repo root or anywhere):
#   benches/ports.sh                        # needs target/release/dpgui for the dpgui row
#   DPGUI=path/to/dpgui benches/ports.sh    # another build
#   DPGUI_ARGS="ports 29500 --json" ...     # if the subcommand's flags differ
#   PORTS_TEST_BIN=auto benches/ports.sh    # also time system::ports directly: builds
#                                           # `cargo test --release --test ports_real` and runs
#                                           # its ignored test bench_listeners_and_owners
#                                           # (listeners() + inode_owners()), printing per-phase
#                                           # medians and adding a hyperfine row; or give the
#                                           # path of an already built test binary
# Knobs: NPROCS, FDS, PORT, RUNS (hyperfine --min-runs), OUT (markdown file).
# Result: hyperfine's table on stdout and as markdown in benches/results/ports.md.
set -euo pipefail

cd "$(dirname "$0")/.."
NPROCS=${NPROCS:-2000}
FDS=${FDS:-10}
PORT=${PORT:-29500}
RUNS=${RUNS:-20}
DPGUI=${DPGUI:-target/release/dpgui}
OUT=${OUT:-benches/results/ports.md}
DPGUI_ARGS=${DPGUI_ARGS:-ports --port $PORT --json}
PORTS_TEST_BIN=${PORTS_TEST_BIN:-}

if [[ -z "${PORTS_BENCH_IN_NETNS:-}" ]]; then
    if [[ $EUID -ne 0 ]]; then
        echo "ports.sh: needs root for 'unshare --net' (a private loopback for port $PORT)" >&2
        exit 1
    fi
    if ! command -v hyperfine >/dev/null; then
        echo "ports.sh: installing hyperfine" >&2
        apt-get install -y hyperfine >/dev/null || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
    fi
    for tool in python3 ss lsof ip unshare; do
        command -v "$tool" >/dev/null || { echo "ports.sh: $tool not found" >&2; exit 1; }
    done
    if [[ "$PORTS_TEST_BIN" == auto ]]; then
        PORTS_TEST_BIN=$(cargo test --release --test ports_real --no-run 2>&1 |
            sed -n 's/^ *Executable .*(\(.*\))$/\1/p')
        [[ -x "$PORTS_TEST_BIN" ]] || { echo "ports.sh: could not build the ports_real test binary" >&2; exit 1; }
    fi
    # Re-run this script inside a fresh network namespace; all state below lives and dies there.
    export NPROCS FDS PORT RUNS DPGUI DPGUI_ARGS OUT PORTS_TEST_BIN
    exec unshare --net env PORTS_BENCH_IN_NETNS=1 bash "$0" "$@"
fi

ip link set lo up
tmp=$(mktemp -d)
LOAD_PID=""
LOAD_PGID=""
LISTENER_PID=""
cleanup() {
    # The load runs in its own session/process group: one signal reaches all 2,000 children
    # (they also die with their parent via PR_SET_PDEATHSIG, should this trap not run).
    if [[ -n "$LOAD_PGID" ]]; then kill -KILL -- "-$LOAD_PGID" 2>/dev/null || true; fi
    if [[ -n "$LOAD_PID" ]]; then kill -KILL "$LOAD_PID" 2>/dev/null || true; fi
    if [[ -n "$LISTENER_PID" ]]; then kill -KILL "$LISTENER_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The load. Why these sockets: on a training box the many processes are torch DataLoader workers
# (and launcher/rank children) forked from a rank, and they inherit its sockets: established
# TCP connections (gloo/NCCL bootstrap, the TCPStore client). So: one parent opens FDS/2
# established loopback connections (both ends held, FDS fds, FDS lines in /proc/net/tcp) and
# forks NPROCS children that inherit all of them and pause. Every /proc/<pid>/fd then has
# ~FDS socket links plus stdio, which is what each tool must walk. Unbound sockets would not show
# in /proc/net/tcp at all, and a listener per process is not what a training box looks like.
cat >"$tmp/load.py" <<'PY'
import ctypes, os, signal, socket, sys

nprocs, nfds = int(sys.argv[1]), int(sys.argv[2])
os.setsid()  # own process group: the bash trap kills all of it at once
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(nfds)
held = []
while len(held) + 2 <= nfds:
    c = socket.create_connection(srv.getsockname())
    a, _ = srv.accept()
    held += [c, a]
if len(held) < nfds:  # odd FDS: one more client end
    held.append(socket.create_connection(srv.getsockname()))
srv.close()
libc = ctypes.CDLL(None, use_errno=True)
parent = os.getpid()
for _ in range(nprocs):
    if os.fork() == 0:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent already gone before prctl
            os._exit(0)
        while True:
            signal.pause()
print("ready", os.getpgid(0), flush=True)
while True:
    signal.pause()
PY

mkfifo "$tmp/load.ready" "$tmp/listener.ready"
python3 "$tmp/load.py" "$NPROCS" "$FDS" >"$tmp/load.ready" &
LOAD_PID=$!
read -r _ LOAD_PGID <"$tmp/load.ready" || { echo "load generator failed" >&2; exit 1; }

# The port holder: one process listening on 0.0.0.0:PORT, like an orphaned rank 0's TCPStore.
python3 -c '
import signal, socket, sys
s = socket.socket()
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
while True:
    signal.pause()
' "$PORT" >"$tmp/listener.ready" &
LISTENER_PID=$!
read -r _ <"$tmp/listener.ready" || { echo "listener on $PORT failed" >&2; exit 1; }

# Counts for the record; processes elsewhere on the host may vanish while we look.
procs=(/proc/[0-9]*)
nproc_now=${#procs[@]}
nfd_now=$( (find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
tcp_lines=$(($(wc -l </proc/net/tcp) + $(wc -l </proc/net/tcp6) - 2))
echo "netns ready: $nproc_now processes, $nfd_now fds, $tcp_lines sockets in /proc/net/tcp{,6}," \
    "listener pid $LISTENER_PID on $PORT, kernel $(uname -r), $(nproc) CPUs"

# What each tool reports, once, so a wrong answer cannot hide behind a fast time.
echo "--- ss"; ss -ltnp "sport = :$PORT"
echo "--- lsof"; lsof -nP -iTCP:"$PORT" -sTCP:LISTEN || true

names=()
cmds=()
if [[ -x "$DPGUI" ]] && "$DPGUI" ports --help >/dev/null 2>&1; then
    echo "--- dpgui"
    # shellcheck disable=SC2086 # DPGUI_ARGS is a word list on purpose
    "$DPGUI" $DPGUI_ARGS || true
    names+=("dpgui ports"); cmds+=("$DPGUI $DPGUI_ARGS")
else
    echo "note: no usable $DPGUI (cargo build --release, or set DPGUI=); its row is skipped" >&2
fi
names+=("ss -ltnp"); cmds+=("ss -ltnp 'sport = :$PORT'")
names+=("lsof"); cmds+=("lsof -nP -iTCP:$PORT -sTCP:LISTEN")
in_process=""
if [[ -n "$PORTS_TEST_BIN" ]]; then
    echo "--- system::ports (listeners + inode_owners), in-process medians"
    in_process=$(DPGUI_BENCH_PORT=$PORT DPGUI_BENCH_ROUNDS=50 "$PORTS_TEST_BIN" --ignored --exact \
        bench_listeners_and_owners --nocapture --test-threads=1 2>&1 | grep -oE '(port [0-9]+:|median of).*')
    echo "$in_process"
    names+=("system::ports (test bin)")
    cmds+=("$PORTS_TEST_BIN --ignored --exact bench_listeners_and_owners -q --test-threads=1")
fi
export DPGUI_BENCH_PORT=$PORT DPGUI_BENCH_ROUNDS=1

args=()
for i in "${!cmds[@]}"; do args+=(--command-name "${names[$i]}" "${cmds[$i]}"); done
mkdir -p "$(dirname "$OUT")"
echo "--- hyperfine"
hyperfine -N -i --warmup 3 --min-runs "$RUNS" --export-markdown "$tmp/table.md" \
    --export-json "$tmp/table.json" "${args[@]}"

{
    echo "# Who listens on port $PORT: dpgui vs ss vs lsof"
    echo
    echo "Generated by \`benches/ports.sh\` on $(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) CPUs:"
    echo "private network namespace; $nproc_now processes ($NPROCS forked children sharing $FDS"
    echo "established loopback sockets each), $nfd_now fds, $tcp_lines sockets, one listener on $PORT."
    echo
    cat "$tmp/table.md"
    echo
    echo "CPU time per run (mean; steadier than wall time on a shared or overcommitted VM):"
    echo
    python3 - "$tmp/table.json" <<'PY'
import json, sys
print("| Command | User [ms] | System [ms] | User + System [ms] |")
print("|:---|---:|---:|---:|")
for r in json.load(open(sys.argv[1]))["results"]:
    u, s = r["user"] * 1e3, r["system"] * 1e3
    print(f"| `{r['command']}` | {u:.1f} | {s:.1f} | {u + s:.1f} |")
PY
    if [[ -n "$in_process" ]]; then
        echo
        echo "\`system::ports\` in one process (no exec, warm), from the ignored test"
        echo "\`bench_listeners_and_owners\`:"
        echo
        echo '```'
        echo "$in_process"
        echo '```'
    fi
} >"$OUT"
echo "wrote $OUT"
