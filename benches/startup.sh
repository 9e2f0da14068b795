#!/usr/bin/env bash
# Start-up time of the dashboard: from exec to the first frame on a real terminal.
# Target: the first frame within 100 ms of start.
#
# Two measurements, both on a 120x40 terminal, with HOME and the XDG directories in a scratch
# directory (no user config) and a diffusion-pipe path that does not exist:
#
#  1. hyperfine, run inside a private tmux server's pane (a real tty; --output=inherit so dpgui
#     draws into the pane) timing `dpgui --exit-after-first-frame`: the whole life of the
#     process (exec, settings, runtime, terminal set-up, first frame, restore, exit). An upper
#     bound on the time to first frame. `dpgui --version` is the floor (exec + clap, no terminal).
#  2. A pty harness (python3): forks dpgui on a pseudo-terminal sized 120x40 and timestamps the
#     moment the frame's last row (the status line, drawn last) comes out of the terminal: the
#     time to first frame as a user sees it, without the exit.
#
# Usage: benches/startup.sh            (repo root or anywhere; root not needed)
# Knobs: RUNS (50), WARMUP (5), DPGUI (target/release/dpgui, built unless set), OUT
#        (benches/results/startup.md).
# Needs: cargo, tmux, python3, hyperfine (installed with apt-get when missing and root).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
OUT=${OUT:-benches/results/startup.md}
TARGET_MS=100

if [[ -z "${DPGUI:-}" ]]; then
    echo "startup.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
DPGUI=$(realpath "$DPGUI")

if ! command -v hyperfine >/dev/null; then
    if [[ $EUID -eq 0 ]]; then
        echo "startup.sh: installing hyperfine" >&2
        apt-get install -y hyperfine >/dev/null ||
            { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
    else
        echo "startup.sh: hyperfine not found (apt-get install hyperfine)" >&2
        exit 1
    fi
fi
for tool in tmux python3; do
    command -v "$tool" >/dev/null || { echo "startup.sh: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
sock=dpgui-bench-startup-$$
tmx() { TMUX_TMPDIR=$tmp tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
    tmx kill-server 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/home" "$tmp/config" "$tmp/state"
sandbox=(env -u NO_COLOR -u DPGUI_DIFFUSION_PIPE -u DPGUI_PYTHON
    "HOME=$tmp/home" "XDG_CONFIG_HOME=$tmp/config" "XDG_STATE_HOME=$tmp/state")
dp_args=(--diffusion-pipe "$tmp/no-such-diffusion-pipe")

# ---- 1. hyperfine in a tmux pane -------------------------------------------------------------
cat >"$tmp/inner.sh" <<EOF
set -u
cd "$PWD"
hyperfine -N --output=inherit --style=basic --warmup $WARMUP --runs $RUNS \\
    --export-markdown "$tmp/hyperfine.md" --export-json "$tmp/hyperfine.json" \\
    -n 'dpgui --exit-after-first-frame (120x40 tmux pane)' \\
    '$DPGUI --exit-after-first-frame ${dp_args[*]}' \\
    -n 'dpgui --version (floor: exec + clap)' \\
    '$DPGUI --version' >"$tmp/hyperfine.log" 2>&1
echo \$? >"$tmp/hyperfine.rc"
tmux wait-for -S hyperfine-done
EOF
echo "startup.sh: hyperfine, $RUNS runs, inside a 120x40 tmux pane" >&2
tmx new-session -d -s bench -x 120 -y 40 -- "${sandbox[@]}" bash "$tmp/inner.sh"
if ! timeout 600 env TMUX_TMPDIR="$tmp" tmux -L "$sock" wait-for hyperfine-done; then
    echo "startup.sh: hyperfine did not finish; pane:" >&2
    tmx capture-pane -p -t bench >&2 || true
    exit 1
fi
if [[ "$(cat "$tmp/hyperfine.rc")" != 0 ]]; then
    echo "startup.sh: hyperfine failed:" >&2
    cat "$tmp/hyperfine.log" >&2
    exit 1
fi
tmx kill-server 2>/dev/null || true

# ---- 2. time to first frame on a pty -------------------------------------------------------
echo "startup.sh: time to first frame on a 120x40 pty, $RUNS runs" >&2
cat >"$tmp/first_frame.py" <<'EOF'
"""Runs argv on a 120x40 pty RUNS times; prints JSON: per run, ms from fork to the first frame's
last row (the status line, drawn last) on the terminal, and ms to exit."""
import fcntl, json, os, pty, select, struct, sys, termios, time

runs, warmup, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
marker = b"\xc2\xb7 1s"  # "· 1s": the end of the status line (theme · refresh)
first, total = [], []
for i in range(warmup + runs):
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.execv(argv[0], argv)
    buf, t_frame = b"", None
    while True:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            sys.exit("no output for 10 s")
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        buf += chunk
        if t_frame is None and marker in buf:
            t_frame = time.monotonic()
    _, status = os.waitpid(pid, 0)
    t_end = time.monotonic()
    os.close(fd)
    if status != 0 or t_frame is None:
        sys.exit(f"run {i}: status {status}, frame seen: {t_frame is not None}; output {buf[-300:]!r}")
    if i >= warmup:
        first.append((t_frame - t0) * 1000)
        total.append((t_end - t0) * 1000)
print(json.dumps({"first_frame_ms": first, "exit_ms": total}))
EOF
"${sandbox[@]}" python3 "$tmp/first_frame.py" "$RUNS" "$WARMUP" "$DPGUI" --exit-after-first-frame \
    "${dp_args[@]}" >"$tmp/pty.json"
# The harness's own cost: a program that only prints the marker.
python3 "$tmp/first_frame.py" "$RUNS" "$WARMUP" "$(type -P printf)" '\302\267 1s' \
    >"$tmp/pty-floor.json"

# ---- report ---------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$(pwd)/benches" python3 - "$tmp/hyperfine.json" "$tmp/hyperfine.md" "$tmp/pty.json" "$tmp/pty-floor.json" \
    "$OUT" "$TARGET_MS" <<'EOF'
import json, os, platform, statistics, subprocess, sys, time
from report_common import cpu_model, git

hf_json, hf_md, pty_json, floor_json, out, target = sys.argv[1:7]
target = float(target)
hf = json.load(open(hf_json))["results"]
pt = json.load(open(pty_json))
floor = json.load(open(floor_json))["first_frame_ms"]

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

ff, ex = pt["first_frame_ms"], pt["exit_ms"]
whole = hf[0]
ff_p95 = pct(ff, 95)
ok = ff_p95 < target and whole["mean"] * 1000 < target
lines = [
    "# dpgui start-up: time to first frame",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `benches/startup.sh` on {os.cpu_count()} "
    f"CPU(s) ({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{' (with local changes)' if git('status', '--porcelain', '--untracked-files=no') else ''}; "
    "release build, 120x40 terminal, no config file, no fake GPUs.",
    "",
    f"**Target: first frame within {target:.0f} ms of start: "
    f"{'met' if ok else 'MISSED'}** (time to first frame p95 {ff_p95:.1f} ms; whole "
    f"`--exit-after-first-frame` run {whole['mean'] * 1000:.1f} ms mean).",
    "",
    "## Time to first frame on a pty (python3 pty harness)",
    "",
    "From fork to the moment the frame's last row (the status line) is read from the terminal; "
    "then to the exit of the process.",
    "",
    "| | min | median | p95 | max |",
    "|:---|---:|---:|---:|---:|",
    f"| first frame [ms] | {min(ff):.1f} | {statistics.median(ff):.1f} | {ff_p95:.1f} | {max(ff):.1f} |",
    f"| exit [ms] | {min(ex):.1f} | {statistics.median(ex):.1f} | {pct(ex, 95):.1f} | {max(ex):.1f} |",
    f"| harness floor [ms] | {min(floor):.1f} | {statistics.median(floor):.1f} | {pct(floor, 95):.1f} | {max(floor):.1f} |",
    "",
    f"{len(ff)} runs each. The floor is the same harness running `printf` of the marker: fork, "
    "exec and pty overhead, included in the rows above.",
    "",
    "## Whole process in a tmux pane (hyperfine)",
    "",
    "`hyperfine -N --output=inherit` inside a 120x40 tmux pane: exec, terminal set-up, first "
    "frame, restore and exit.",
    "",
    open(hf_md).read().strip(),
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
echo "startup.sh: wrote $OUT" >&2
