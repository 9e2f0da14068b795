#!/usr/bin/env bash
# Reading the sizes of 100,000 images: dpgui's dataset scan against the Python loop
# diffusion-pipe runs (`Image.open(p).size` with PIL), side by side, same files. Target (issue):
# dpgui at least 10x faster than the PIL loop.
#
# The images (mixed PNG/JPEG/WebP, 56 sizes from 16x16 to 127x120, no captions) are generated
# once under target/bench-data/ by benches/dataset_scan_gen.py (with a dataset config beside
# them). PIL comes from python3, or from a venv this script makes under target/ when python3 has
# none. After a warm-up (every file read once, then each command run once) so the page cache is
# hot for all, the commands run alternately RUNS times each (order flipped every round), timed by
# a Python timer (wall clock, and CPU from wait4):
#   python3 benches/dataset_scan_pil.py DIR              the PIL loop (one process)
#   python3 benches/dataset_scan_pil.py DIR --procs N    the same in N processes, as
#                                                        diffusion-pipe's datasets.map(num_proc=)
#   target/release/dpgui dataset DIR.toml --rescan      the whole command: scan with no scan
#                                                        cache (cold), problems, buckets, the
#                                                        text report (the target's figure)
#   target/release/dpgui dataset DIR.toml --json --rescan   the same with JSON (every file name
#                                                        of the problems: 3 MB)
#   the scan alone (library call, no report): the #[ignore]d `bench_scan_timing` test of
#   tests/dataset_scan.rs, built in release (SCAN_ONLY=0 skips it)
#
# Usage: benches/dataset_scan.sh      (repo root or anywhere)
# Knobs: COUNT (100000), RUNS (5), PROCS (CPU count), DATA (target/bench-data/dataset-<COUNT/1000>k),
#        DPGUI (target/release/dpgui, built unless set), SCAN_ONLY (1), OUT
#        (benches/results/dataset_scan.md).
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${COUNT:-100000}
RUNS=${RUNS:-5}
PROCS=${PROCS:-$(nproc)}
DATA=${DATA:-target/bench-data/dataset-$((COUNT / 1000))k}
OUT=${OUT:-benches/results/dataset_scan.md}
SCAN_ONLY=${SCAN_ONLY:-1}

# Python with PIL.
PY=python3
if ! python3 -c 'import PIL' 2>/dev/null; then
    VENV=target/bench-venv-pil
    if ! "$VENV/bin/python" -c 'import PIL' 2>/dev/null; then
        echo "dataset_scan.sh: making $VENV (pip install pillow)" >&2
        python3 -m venv "$VENV" >&2
        "$VENV/bin/pip" install -q pillow >&2
    fi
    PY=$VENV/bin/python
fi
PIL_VERSION=$("$PY" -c 'import PIL; print(PIL.__version__)')

"$PY" benches/dataset_scan_gen.py "$DATA" --count "$COUNT" >&2
DATA=$(realpath "$DATA")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z "${DPGUI:-}" ]]; then
    echo "dataset_scan.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
# Private copies: other work may rebuild target/release while this runs.
cp "$DPGUI" "$tmp/dpgui"
SCAN_BIN=""
if [[ "$SCAN_ONLY" == 1 ]]; then
    echo "dataset_scan.sh: cargo test --release --test dataset_scan --no-run" >&2
    exe=$(cargo test --release --test dataset_scan --no-run --message-format=json 2>/dev/null |
        "$PY" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] == "dataset_scan":
        print(m["executable"])')
    cp "$exe" "$tmp/scan_only"
    SCAN_BIN="$tmp/scan_only"
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
stat0=$(head -1 /proc/stat)

"$PY" - "$DATA" "$tmp/dpgui" "$SCAN_BIN" "$RUNS" "$PROCS" "$PY" "$tmp/timer.json" <<'EOF'
import json, os, subprocess, sys, time
data, dpgui, scan_bin, runs, procs, py, out = sys.argv[1:8]
runs, procs = int(runs), int(procs)
cmds = {
    "pil": [py, "benches/dataset_scan_pil.py", data],
    "pil_procs": [py, "benches/dataset_scan_pil.py", data, "--procs", str(procs)],
    "dpgui": [dpgui, "dataset", data + ".toml", "--rescan"],
    "dpgui_json": [dpgui, "dataset", data + ".toml", "--json", "--rescan"],
}
envs = {n: None for n in cmds}
if scan_bin:
    cmds["scan_only"] = [scan_bin, "--ignored", "--exact", "bench_scan_timing", "--nocapture", "-q"]
    envs["scan_only"] = dict(os.environ, DPGUI_BENCH_SCAN_DIR=data)

def run(name):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmds[name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=envs[name])
    stdout = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    # `dpgui dataset` exits 1 when it finds an error-level problem (here: no captions).
    if code not in (0, 1):
        sys.exit(f"{cmds[name]} failed: {code}")
    return wall, ru.ru_utime + ru.ru_stime, stdout.decode()

# Warm-up: every file through the page cache, then each command once.
for e in os.scandir(data):
    with open(e.path, "rb") as f:
        f.read()
outputs = {n: run(n)[2] for n in cmds}
res = {n: {"wall": [], "cpu": []} for n in cmds}
order = list(cmds)
for i in range(runs):
    for n in (order if i % 2 == 0 else order[::-1]):
        wall, cpu, _ = run(n)
        res[n]["wall"].append(wall)
        res[n]["cpu"].append(cpu)
    print(f"dataset_scan.sh: round {i + 1}/{runs}: " + ", ".join(
        f"{n} {res[n]['wall'][-1]:.3f} s" for n in order), file=sys.stderr)

def summary(name, text):
    if name.startswith("pil"):
        return json.loads(text.strip().splitlines()[-1])
    if name == "scan_only":
        line = [l for l in text.splitlines() if l.startswith("BENCH ")][-1]
        return json.loads(line[len("BENCH "):])
    if name == "dpgui":
        # "  100000 images, 0 videos, ..." in the text report.
        line = next(l for l in text.splitlines() if " images, " in l)
        return {"images": int(line.split()[0]), "bytes": len(text)}
    r = json.loads(text)
    d = r.get("directories", [{}])[0]
    return {"images": d.get("images"), "videos": d.get("videos"), "bytes": len(text)}

json.dump({"summaries": {n: summary(n, t) for n, t in outputs.items()}, "results": res,
           "files": sum(1 for _ in os.scandir(data))}, open(out, "w"))
EOF
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stat1=$(head -1 /proc/stat)

cmd="benches/dataset_scan.sh"
[[ "$COUNT" == 100000 ]] || cmd="COUNT=$COUNT $cmd"
[[ "$RUNS" == 5 ]] || cmd="RUNS=$RUNS $cmd"
mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$(pwd)/benches" "$PY" - "$tmp/timer.json" "$OUT" "$cmd" "$DATA" "$DPGUI" \
    "$load0" "$load1" "$stat0" "$stat1" "$PIL_VERSION" "$PROCS" <<'EOF'
import json, os, platform, statistics, sys, time
from report_common import cpu_model, git
timer, out, cmd, data, binary, load0, load1, stat0, stat1, pilv, procs = sys.argv[1:12]
t = json.load(open(timer))
r, s = t["results"], t["summaries"]
med = {n: statistics.median(v["wall"]) for n, v in r.items()}
cpu = {n: statistics.median(v["cpu"]) for n, v in r.items()}
a = [int(x) for x in stat0.split()[1:]]
b = [int(x) for x in stat1.split()[1:]]
d = [y - x for x, y in zip(a, b)]
busy = (os.cpu_count() or 1) * (sum(d[:8]) - d[3] - d[4]) / max(1, sum(d[:8]))
speedup = med["pil"] / med["dpgui"]
verdict = "met" if speedup >= 10 else "MISSED"
dirty = " (with local changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
n = t["files"]
lines = [
    f"# Reading the sizes of {n:,} images: dpgui vs PIL",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `{cmd}` on {os.cpu_count()} CPU(s) "
    f"({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}; release build (`{binary}`), "
    f"Python {platform.python_version()}, Pillow {pilv}.",
    "",
    f"Load: the machine is shared with other work: load average {load0} before, {load1} after; "
    f"{busy:.2f} of {os.cpu_count()} cores busy machine-wide during the measurements (these "
    "commands included). `dpgui dataset` runs its scan workers at normal priority, as the PIL "
    "loop runs; the dashboard's (and the scan-alone test's) run at nice 10.",
    "",
    f"Files: `{os.path.relpath(data)}`, {n:,} images (PNG, JPEG, WebP in equal parts, 56 sizes "
    "from 16x16 to 127x120, a few hundred bytes each; no captions), generated by "
    "`benches/dataset_scan_gen.py`; hot in the page cache (every file read once, then a warm-up "
    f"run of each command). {len(r['dpgui']['wall'])} runs of each, alternating (order flipped "
    "every round). dpgui runs with `--rescan`: no scan cache is read (cold), every header is "
    "read again.",
    "",
    "Target: dpgui at least 10x faster than the PIL loop diffusion-pipe runs.",
    "",
    "| Command | median wall [s] | min [s] | max [s] | median CPU (user+sys) [s] | µs per image | vs PIL loop |",
    "|:---|---:|---:|---:|---:|---:|---:|",
]
names = {
    "pil": "PIL loop: `Image.open(p).size` per file (`benches/dataset_scan_pil.py`)",
    "pil_procs": f"PIL in {procs} processes (`--procs {procs}`, as diffusion-pipe's num_proc)",
    "dpgui": "`dpgui dataset DIR.toml --rescan` (scan, problems, buckets, the text report)",
    "dpgui_json": "`dpgui dataset DIR.toml --json --rescan` (the same, every file name in JSON)",
    "scan_only": "dpgui scan alone (`datasets::scan_directory`, no cache; ignored test)",
}
for k in ["pil", "pil_procs", "dpgui", "dpgui_json", "scan_only"]:
    if k not in r:
        continue
    w = r[k]["wall"]
    lines.append(f"| {names[k]} | {med[k]:.3f} | {min(w):.3f} | {max(w):.3f} | {cpu[k]:.3f} | "
                 f"{med[k] / n * 1e6:.1f} | {med['pil'] / med[k]:.1f}x |")
lines += [
    "",
    f"**Speed-up of `dpgui dataset` over the PIL loop: {speedup:.1f}x (target >= 10x): {verdict}.**",
    "",
    "What each found: "
    f"PIL loop {s['pil']['sizes']:,} sizes ({s['pil']['failed']} failures), widths summing to "
    f"{s['pil']['sum_w']:,} and heights to {s['pil']['sum_h']:,}; "
    f"`dpgui dataset` {s['dpgui']['images']:,} images; with --json "
    f"{s['dpgui_json']['images']:,} images ({s['dpgui_json']['bytes']:,} bytes of JSON)"
    + (f"; the scan alone {s['scan_only']['sizes']:,} sizes, widths summing to "
       f"{s['scan_only']['sum_w']:,} and heights to {s['scan_only']['sum_h']:,}"
       if "scan_only" in s else "")
    + ".",
    "",
    "Every run (wall s):",
    "",
]
for k in r:
    lines.append(f"- {k}: " + ", ".join(f"{x:.3f}" for x in r[k]["wall"]))
lines.append("")
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
echo "dataset_scan.sh: wrote $OUT" >&2
