#!/usr/bin/env bash
# Launch/stop cycles of a 2-rank job with the real DeepSpeed launcher. Target (issue): 50 cycles,
# 0 leftover processes, 0 ports held.
#
# Each cycle (benches/launch_cycles.py): `dpgui launch --config C --gpus 0,1 --port auto --env
# DP_TEST_STEPS_PER_EPOCH=100000` runs the diffusion-pipe stand-in (tests/fixtures/dp_checkout,
# CPU ranks on gloo, DS_ACCELERATOR=cpu) through deepspeed 0.18.4 from the test venv; once rank 0
# printed its first `steps:` line, `dpgui stop ID --json` (the ladder SIGINT, 2 s, SIGTERM, 2 s,
# SIGKILL: job_interrupt_grace_secs/job_terminate_grace_secs = 2 in the scratch config); then the
# job's supervisor is waited for, and what is left is counted: processes with
# DPGUI_JOB_ID=<id> in /proc/*/environ, and the job's port (LISTEN in /proc/net/tcp{,6}, or a
# failing bind with SO_REUSEADDR). CYCLES plain stops, then MIXED more alternating
# `stop --kill --yes` and `stop --save` (save-and-stop: checkpoint, exit 0). After the last cycle
# the same counts over all jobs. Everything in a scratch XDG_STATE_HOME/XDG_CONFIG_HOME.
#
# The venv is target/test-venv (tests/common/venv.rs provisions it: `cargo test --test jobs_real`
# once, or pip install torch deepspeed==0.18.4 into it); DPGUI_TEST_VENV overrides, as for the
# tests. TORCH_EXTENSIONS_DIR is the tests' cache under target/test-torch-extensions when there is
# exactly one, so DeepSpeed's CPU op is not rebuilt.
#
# Usage: benches/launch_cycles.sh        (takes 10-20 min: run it with nohup)
# Knobs: CYCLES (50), MIXED (10; 0 for plain stops only), STEP_SECONDS (0.2), DPGUI
#        (target/release/dpgui, built unless set), OUT (benches/results/launch_cycles.md).
set -euo pipefail

cd "$(dirname "$0")/.."
CYCLES=${CYCLES:-50}
MIXED=${MIXED:-10}
STEP_SECONDS=${STEP_SECONDS:-0.2}
OUT=${OUT:-benches/results/launch_cycles.md}

if [[ -z "${DPGUI:-}" ]]; then
    echo "launch_cycles.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
DPGUI_SRC=$DPGUI
VENV=${DPGUI_TEST_VENV:-target/test-venv}
if [[ -z "${DPGUI_TEST_VENV:-}" && ! -f "$VENV/.dpgui-test-venv-complete" ]]; then
    echo "launch_cycles.sh: provisioning $VENV (torch + deepspeed==0.18.4, ~3 GB)" >&2
    [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check torch deepspeed==0.18.4 >&2
    "$VENV/bin/python" -c "import torch, deepspeed; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)" \
        >"$VENV/.dpgui-test-venv-complete"
fi
VENV=$(realpath "$VENV")
versions=$("$VENV/bin/python" -c "import torch, deepspeed; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)" 2>/dev/null | tail -1)
mapfile -t ext < <(find target/test-torch-extensions -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
if ((${#ext[@]} == 1)); then
    EXT=$(realpath "${ext[0]}")
else
    EXT=$(realpath -m target/test-torch-extensions/bench)
fi

tmp=$(mktemp -d)
cleanup() {
    # Anything a failed cycle left behind, by its job tag (never by name).
    python3 - "$tmp/cycles.jsonl" <<'EOF' || true
import json, os, signal, sys
ids = set()
try:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        if r.get("job"):
            ids.add(r["job"])
except OSError:
    pass
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            env = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"DPGUI_JOB_ID=") and v[13:].decode() in ids for v in env):
            os.kill(int(d), signal.SIGKILL)
EOF
    rm -rf "$tmp"
}
trap cleanup EXIT
cp "$DPGUI" "$tmp/dpgui"
mkdir -p "$tmp/work"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
stat0=$(head -1 /proc/stat)
t0=$(date +%s)
python3 benches/launch_cycles.py --dpgui "$tmp/dpgui" --venv "$VENV" \
    --checkout "$(realpath tests/fixtures/dp_checkout)" --extensions "$EXT" --work "$tmp/work" \
    --out "$tmp/cycles.jsonl" --cycles "$CYCLES" --mixed "$MIXED" --step-seconds "$STEP_SECONDS"
t1=$(date +%s)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stat1=$(head -1 /proc/stat)

cmd="benches/launch_cycles.sh"
[[ "$CYCLES" == 50 ]] || cmd="CYCLES=$CYCLES $cmd"
[[ "$MIXED" == 10 ]] || cmd="MIXED=$MIXED $cmd"
[[ "$STEP_SECONDS" == 0.2 ]] || cmd="STEP_SECONDS=$STEP_SECONDS $cmd"
mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$(pwd)/benches" python3 benches/launch_cycles_report.py "$tmp/cycles.jsonl" "$OUT" \
    "$cmd" "$DPGUI_SRC" "$versions" "$load0" "$load1" "$stat0" "$stat1" "$((t1 - t0))"
echo "launch_cycles.sh: wrote $OUT" >&2
