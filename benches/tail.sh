#!/usr/bin/env bash
# Following a job's logs: 8 rank logs each growing at 20,000 lines/s. Targets (issue): every line
# shown within 250 ms, dpgui under 25% of one core, memory bounded (under 100 MB) however long it
# runs.
#
# benches/tail_writer.py appends diffusion-pipe-like text (DeepSpeed step/lr/INFO lines, torch
# warnings, tqdm `\r` redraws, 600-byte and 20,000-byte lines) to RANKS rank logs at RATE lines/s
# each, in 5 ms batches; every line carries the CLOCK_MONOTONIC time it was written and a
# per-rank sequence number. Two runs:
#
#  A. `dpgui __bench-tail JOB_DIR --seconds N` (src/tui/bench.rs): what the job view does per
#     100 ms tick (JobLogs::poll, rank 0's history scanned on a thread, the whole Jobs view drawn
#     at 200x60 into a ratatui TestBackend); every line handed over is timed from its write to
#     the end of the frame drawn after it (latency until shown), sequence gaps are counted. CPU
#     (utime+stime of the process / wall) and peak RSS (VmHWM) come from the process itself.
#  B. The real dashboard, `dpgui --fake-gpus 8 attach JOB` in a detached 200x60 tmux pane,
#     against a synthetic job (a journal.json in a scratch XDG_STATE_HOME whose "supervisor" is a
#     placeholder `sleep`, so the job reads as running); while the writer runs, every 0.5 s
#     (jittered): CPU ticks and VmRSS of dpgui from /proc, and the newest write time on screen
#     (tmux capture-pane; the DeepSpeed lines' `[date time,ms]` prefix is the write's wall
#     clock), i.e. how stale the screen is. This includes everything else the dashboard does
#     (terminal output, GPU feed, process and port scans, the job list refresh).
#
# Usage: benches/tail.sh        (repo root or anywhere)
# Knobs: DURATION (30, run A's writer seconds), TUI_DURATION (300, run B's: long, for memory),
#        RATE (20000), RANKS (8), STEP_EVERY (10: every 10th line of rank 0 is a `steps:` line,
#        2,000 steps/s), SKIP_TUI (1 skips run B), DPGUI (target/release/dpgui, built unless set), OUT
#        (benches/results/tail.md), BENCH_TMP (scratch parent). The logs grow by 33 MiB/s; the
#        writer deallocates all but their last 64 MiB (--punch-holes), so disk use stays < 1 GB.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
TUI_DURATION=${TUI_DURATION:-300}
RATE=${RATE:-20000}
RANKS=${RANKS:-8}
STEP_EVERY=${STEP_EVERY:-10}
SKIP_TUI=${SKIP_TUI:-0}
OUT=${OUT:-benches/results/tail.md}

if [[ -z "${DPGUI:-}" ]]; then
    echo "tail.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
DPGUI=$(realpath "$DPGUI")
# A private copy: other work may rebuild target/release while this runs.
tmp=$(mktemp -d -p "${BENCH_TMP:-${TMPDIR:-/tmp}}" dpgui-bench-tail.XXXXXX)
cp "$DPGUI" "$tmp/dpgui"
DPGUI_SRC=$DPGUI
DPGUI=$tmp/dpgui
sock=dpgui-bench-tail-$$
tmx() { TMUX_TMPDIR=$tmp tmux -L "$sock" -f /dev/null "$@"; }
placeholder=
cleanup() {
    tmx kill-server 2>/dev/null || true
    if [[ -n "$placeholder" ]]; then kill "$placeholder" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# A job dir: empty rank logs and a launcher log naming the ranks.
make_job_dir() {
    local dir=$1 r
    mkdir -p "$dir/ranks"
    for ((r = 0; r < RANKS; r++)); do
        : >"$dir/ranks/20260101000000_rank$r.log"
        echo "[2026-01-01 00:00:0$((r % 10)),001] [INFO] [launch.py:256:main] process $((20000 + r)) spawned with command: ['/venv/bin/python', '-u', 'train.py', '--local_rank=$r', '--deepspeed', '--config', '/data/flux.toml']" >>"$dir/launcher.log"
    done
}
cpu_stat() { head -1 /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- A: the job view's path, in-process latency ------------------------------------------------
id_a=20260101-000000-bna
dir_a=$tmp/a/jobs/$id_a
make_job_dir "$dir_a"
echo "tail.sh: A: __bench-tail for $((DURATION + 2)) s, writer $RANKS x $RATE lines/s for $DURATION s" >&2
load_a0=$(loadavg)
stat_a0=$(cpu_stat)
"$DPGUI" __bench-tail "$dir_a" --seconds "$((DURATION + 2))" >"$tmp/a.json" &
bench_pid=$!
sleep 0.5
python3 benches/tail_writer.py "$dir_a" --seconds "$DURATION" --rate "$RATE" --ranks "$RANKS" \
    --step-every "$STEP_EVERY" --punch-holes 64 >"$tmp/a.writer.json"
wait "$bench_pid"
stat_a1=$(cpu_stat)
load_a1=$(loadavg)
du -sm "$dir_a" | cut -f1 >"$tmp/a.mib"
rm -rf "$tmp/a"

# --- B: the real dashboard in tmux -----------------------------------------------------------
if [[ "$SKIP_TUI" != 1 ]]; then
    command -v tmux >/dev/null || { echo "tail.sh: tmux not found" >&2; exit 1; }
    home=$tmp/b
    mkdir -p "$home/home" "$home/config" "$home/state"
    id_b=20260101-000000-bnb
    dir_b=$home/state/dpgui/jobs/$id_b
    make_job_dir "$dir_b"
    # The job's "supervisor": alive for the run, so the job reads as running.
    sleep 100000 &
    placeholder=$!
    python3 - "$dir_b" "$id_b" "$placeholder" "$RANKS" <<'EOF'
import json, os, sys, time
d, jid, sup, ranks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ticks = int(open(f"/proc/{sup}/stat").read().rsplit(")", 1)[1].split()[19])
now = int(time.time())
boot = open("/proc/sys/kernel/random/boot_id").read().strip()
j = {
    "id": jid, "config": "/data/flux.toml", "model_type": "flux", "gpus": list(range(ranks)),
    "port": 29517, "cpu_ranks": False, "options": {},
    "plan": {"program": "/venv/bin/deepspeed", "args": ["--master_port", "29517", "train.py",
             "--deepspeed", "--config", "/data/flux.toml", "--master_port", "29517"],
             "cwd": "/data/diffusion-pipe", "env": []},
    "output_dir": "/data/out", "epochs": 100, "max_steps": None, "created": now,
    "boot_id": boot, "state": "running", "supervisor": {"pid": sup, "start_ticks": ticks},
    "launcher": None, "pgid": None, "started": now, "ranks": [], "run_dir": "/data/out/run",
    "progress": {"epoch": None, "step": None, "total_steps": None, "steps_per_epoch": None,
                 "loss": None, "iter_time": None, "eta_secs": None, "complete": False,
                 "saved": [], "phase": None},
    "stop": None, "exit_code": None, "exit_signal": None, "ended": False, "ended_at": None,
    "reason": None,
}
json.dump(j, open(os.path.join(d, "journal.json"), "w"), indent=2)
EOF
    envs=(env -u NO_COLOR -u DPGUI_DIFFUSION_PIPE -u DPGUI_PYTHON -u DPGUI_LOG "HOME=$home/home"
        "XDG_CONFIG_HOME=$home/config" "XDG_STATE_HOME=$home/state")
    listed=$("${envs[@]}" "$DPGUI" jobs --json | python3 -c "import json,sys; print(' '.join(j.get('id') or j.get('journal',{}).get('id','?') for j in json.load(sys.stdin)))" 2>/dev/null || true)
    if [[ " $listed " != *" $id_b "* ]]; then
        echo "tail.sh: B: \`dpgui jobs --json\` does not list $id_b (got: $listed)" >&2
        "${envs[@]}" "$DPGUI" jobs --json >&2 || true
        exit 1
    fi
    tmx new-session -d -s tail -x 200 -y 60 -- "${envs[@]}" "$DPGUI" \
        --diffusion-pipe "$home/no-such-diffusion-pipe" --fake-gpus 8 attach "$id_b"
    pid=$(tmx display -p -t tail '#{pane_pid}')
    deadline=$((SECONDS + 30))
    until tmx capture-pane -p -t tail | grep -q "rank $((RANKS - 1))"; do
        if ((SECONDS > deadline)); then
            echo "tail.sh: B: no job view after 30 s; pane:" >&2
            tmx capture-pane -p -t tail >&2
            exit 1
        fi
        sleep 0.2
    done
    [[ "$(cat "/proc/$pid/comm")" == dpgui ]] || { echo "tail.sh: pid $pid is not dpgui" >&2; exit 1; }
    echo "tail.sh: B: dpgui attach (pid $pid) in tmux 200x60; writer for $TUI_DURATION s" >&2
    sleep 2
    load_b0=$(loadavg)
    stat_b0=$(cpu_stat)
    python3 benches/tail_writer.py "$dir_b" --seconds "$TUI_DURATION" --rate "$RATE" \
        --ranks "$RANKS" --step-every "$STEP_EVERY" --punch-holes 64 >"$tmp/b.writer.json" &
    writer_pid=$!
    sleep 0.2
    TMUX_TMPDIR=$tmp python3 benches/tail_sample.py "$pid" --seconds "$((TUI_DURATION - 1))" --interval 0.5 \
        --tmux-socket "$sock" --tmux-target tail >"$tmp/b.json"
    wait "$writer_pid"
    stat_b1=$(cpu_stat)
    load_b1=$(loadavg)
    tmx capture-pane -p -t tail >"$tmp/b.screen"
    tmx kill-server 2>/dev/null || true
    kill "$placeholder" 2>/dev/null || true
    placeholder=
    rm -rf "$home/state/dpgui/jobs"
else
    echo '{}' >"$tmp/b.json"
    echo '{}' >"$tmp/b.writer.json"
    : >"$tmp/b.screen"
    load_b0='' load_b1='' stat_b0='' stat_b1=''
fi

mkdir -p "$(dirname "$OUT")"
cmd="benches/tail.sh"
for v in DURATION TUI_DURATION RATE RANKS STEP_EVERY SKIP_TUI; do
    case "$v=${!v}" in
        DURATION=30 | TUI_DURATION=300 | RATE=20000 | RANKS=8 | STEP_EVERY=10 | SKIP_TUI=0) ;;
        *) cmd="$v=${!v} $cmd" ;;
    esac
done
PYTHONPATH="$(pwd)/benches" python3 benches/tail_report.py "$tmp" "$OUT" "$cmd" "$DPGUI_SRC" \
    "$load_a0" "$load_a1" "$stat_a0" "$stat_a1" "${load_b0:-}" "${load_b1:-}" "${stat_b0:-}" \
    "${stat_b1:-}"
echo "tail.sh: wrote $OUT" >&2
