#!/usr/bin/env bash
# Idle cost of the dashboard: CPU and resident memory while it sits on the Environment tab with
# the default 1 s refresh. Targets: under 1% of one core, under 40 MB resident.
#
# dpgui runs in a private tmux server's detached 120x40 pane (HOME and the XDG directories in a
# scratch directory: no config file, so the default refresh), first with the real GPU path (NVML;
# on a machine without the NVIDIA driver that is the "no NVIDIA GPU" path), then with
# `--fake-gpus 8`. For each: wait for the first full frame, let it settle SETTLE (5) s, then over
# WINDOW (60) s read /proc/<pid>/stat utime+stime at the start and the end (CPU) and
# /proc/<pid>/status VmRSS every 5 s (RSS max); also VmHWM (peak RSS since start), the thread
# count and the context switches of all threads (wake-ups).
#
# Usage: benches/idle.sh              (repo root or anywhere; root not needed)
# Knobs: WINDOW (60, a multiple of 5), SETTLE (5), FAKE_GPUS (8; 0 skips the second run), DPGUI
#        (target/release/dpgui, built unless set), OUT (benches/results/idle.md).
# Prints, per run: "CPU: X% of one core averaged over 60 s; RSS max: Y MB" (MB = MiB here).
set -euo pipefail

cd "$(dirname "$0")/.."
WINDOW=${WINDOW:-60}
SETTLE=${SETTLE:-5}
FAKE_GPUS=${FAKE_GPUS:-8}
OUT=${OUT:-benches/results/idle.md}
CPU_TARGET=1      # percent of one core
RSS_TARGET=40     # MiB

if [[ -z "${DPGUI:-}" ]]; then
    echo "idle.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
DPGUI=$(realpath "$DPGUI")
command -v tmux >/dev/null || { echo "idle.sh: tmux not found" >&2; exit 1; }
CLK_TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d)
sock=dpgui-bench-idle-$$
tmx() { TMUX_TMPDIR=$tmp tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
    tmx kill-server 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
# utime + stime of the whole process (all threads, living and exited), in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# run NAME ARGS...: measures one configuration; appends a result line to $tmp/results.
run() {
    local name=$1
    shift
    local home=$tmp/$name
    mkdir -p "$home/home" "$home/config" "$home/state"
    tmx kill-server 2>/dev/null || true
    tmx new-session -d -s idle -x 120 -y 40 -- env -u NO_COLOR -u DPGUI_DIFFUSION_PIPE \
        -u DPGUI_PYTHON -u DPGUI_LOG "HOME=$home/home" "XDG_CONFIG_HOME=$home/config" \
        "XDG_STATE_HOME=$home/state" "$DPGUI" --diffusion-pipe "$home/no-such-diffusion-pipe" "$@"
    local pid
    pid=$(tmx display -p -t idle '#{pane_pid}')
    # The first full frame: the Environment tab's key hints are on the status line.
    local deadline=$((SECONDS + 20))
    until tmx capture-pane -p -t idle | grep -q 'x end group'; do
        if ((SECONDS > deadline)); then
            echo "idle.sh: $name: no dashboard after 20 s; pane:" >&2
            tmx capture-pane -p -t idle >&2
            exit 1
        fi
        sleep 0.1
    done
    [[ "$(cat "/proc/$pid/comm")" == dpgui ]] || { echo "idle.sh: pid $pid is not dpgui" >&2; exit 1; }
    echo "idle.sh: $name: pid $pid up; settling ${SETTLE}s, then measuring ${WINDOW}s" >&2
    sleep "$SETTLE"

    local t0 c0 x0 rss rss_max=0 i
    t0=$(now_ns)
    c0=$(cpu_ticks "$pid")
    x0=$(ctx_switches "$pid")
    for ((i = 0; i <= WINDOW; i += 5)); do
        ((i == 0)) || sleep 5
        [[ -r /proc/$pid/stat ]] || { echo "idle.sh: $name: dpgui exited" >&2; exit 1; }
        rss=$(status_kb "$pid" VmRSS)
        ((rss > rss_max)) && rss_max=$rss
    done
    local t1 c1 x1 hwm threads
    t1=$(now_ns)
    c1=$(cpu_ticks "$pid")
    x1=$(ctx_switches "$pid")
    hwm=$(status_kb "$pid" VmHWM)
    threads=$(status_kb "$pid" Threads)
    tmx capture-pane -p -t idle >"$tmp/$name.screen"
    tmx kill-server 2>/dev/null || true

    python3 - "$tmp/results" "$name" "$t0" "$t1" "$c0" "$c1" "$CLK_TCK" "$rss_max" "$hwm" \
        "$threads" "$x0" "$x1" "$*" <<'EOF'
import json, sys
results, name, t0, t1, c0, c1, hz, rss, hwm, threads, x0, x1, args = sys.argv[1:14]
wall = (int(t1) - int(t0)) / 1e9
cpu = (int(c1) - int(c0)) / int(hz)
r = {
    "name": name, "args": args, "wall_s": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall,
    "rss_max_mib": int(rss) / 1024, "hwm_mib": int(hwm) / 1024, "threads": int(threads),
    "wakeups_per_s": (int(x1) - int(x0)) / wall, "tick_s": 1 / int(hz),
}
with open(results, "a") as f:
    f.write(json.dumps(r) + "\n")
print(f"{name}: CPU: {r['cpu_pct']:.2f}% of one core averaged over {wall:.0f} s; "
      f"RSS max: {r['rss_max_mib']:.1f} MB")
EOF
}

: >"$tmp/results"
run no-nvml
if ((FAKE_GPUS > 0)); then
    run "fake-gpus-$FAKE_GPUS" --fake-gpus "$FAKE_GPUS"
fi

mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$(pwd)/benches" python3 - "$tmp/results" "$OUT" "$CPU_TARGET" "$RSS_TARGET" "$WINDOW" "$tmp/no-nvml.screen" <<'EOF'
import json, os, platform, subprocess, sys, time
from report_common import cpu_model, git

results_file, out, cpu_target, rss_target, window, screen_file = sys.argv[1:7]
cpu_target, rss_target = float(cpu_target), float(rss_target)
rs = [json.loads(l) for l in open(results_file)]

def verdict(ok):
    return "met" if ok else "MISSED"

dirty = " (with local changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
lines = [
    "# dpgui idle cost",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `benches/idle.sh` on {os.cpu_count()} "
    f"CPU(s) ({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}; release build in a detached 120x40 "
    f"tmux pane, Environment tab, default 1 s refresh, no config file; {window} s window after "
    "the first frame and 5 s of settling.",
    "",
    f"Targets: CPU under {cpu_target:g}% of one core, RSS under {rss_target:g} MB (MiB).",
    "",
    "| Run | CPU (% of one core) | RSS max [MiB] | peak RSS since start (VmHWM) [MiB] | threads | wake-ups/s (context switches) | CPU target | RSS target |",
    "|:---|---:|---:|---:|---:|---:|:---:|:---:|",
]
for r in rs:
    lines.append(
        f"| `{('dpgui ' + r['args']).strip()}` ({r['name']}) | {r['cpu_pct']:.2f} "
        f"({r['cpu_s']:.2f} s CPU in {r['wall_s']:.1f} s) | {r['rss_max_mib']:.1f} | "
        f"{r['hwm_mib']:.1f} | {r['threads']} | {r['wakeups_per_s']:.1f} | "
        f"{verdict(r['cpu_pct'] < cpu_target)} | {verdict(r['rss_max_mib'] < rss_target)} |"
    )
lines += [
    "",
    f"CPU is (utime + stime) over the window from `/proc/<pid>/stat` (resolution "
    f"{rs[0]['tick_s'] * 1000:.0f} ms of CPU); RSS is the largest VmRSS of readings every 5 s.",
    "",
    "Summary lines:",
    "",
    "```",
]
for r in rs:
    lines.append(
        f"{r['name']}: CPU: {r['cpu_pct']:.2f}% of one core averaged over {r['wall_s']:.0f} s; "
        f"RSS max: {r['rss_max_mib']:.1f} MB"
    )
lines += ["```", "", "Screen at the end of the first run:", "", "```"]
lines += [l.rstrip() for l in open(screen_file).read().rstrip("\n").split("\n")]
lines += ["```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
echo "idle.sh: wrote $OUT" >&2
