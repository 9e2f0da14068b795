#!/usr/bin/env bash
# Reading the progress history of an existing 1 GB rank log. Target (issue): within 3x the time
# of `grep -c '^steps:'` on the same file, measured side by side.
#
# The log (benches/history_gen.py: caching-phase tqdm `\r` bars, per step a DeepSpeed `steps:`
# line and a `[Rank 0] step=N, skipped=0, lr=[...]` line, timer INFO lines, torch warnings, evals
# with `\r` bars, checkpoints, epochs, a 100 kB line now and then) is generated once and cached
# under target/bench-data/. After a warm-up (the file is read once, then each command runs once)
# so that the page cache is hot for both, the two commands run alternately RUNS times each (the
# order flips every round), timed by a Python timer (wall clock, and CPU from wait4):
#   grep -c '^steps:' FILE                       (the environment's locale, as a user would type it)
#   target/release/dpgui __scan-history FILE     (progress::scan_history: the step, epoch, loss
#                                                 history, ... the job view shows; JSON summary)
# plus `LC_ALL=C grep -c '^steps:'` for reference, then hyperfine on the same three as a
# cross-check (hyperfine runs each command's runs back to back).
#
# Usage: benches/history.sh            (repo root or anywhere)
# Knobs: SIZE (1000000000 bytes), RUNS (10), DATA (target/bench-data/history-rank0-<SIZE>.log),
#        DPGUI (target/release/dpgui, built unless set), OUT (benches/results/history.md),
#        HYPERFINE (1; 0 skips the cross-check).
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE=${SIZE:-1000000000}
RUNS=${RUNS:-10}
DATA=${DATA:-target/bench-data/history-rank0-$SIZE.log}
OUT=${OUT:-benches/results/history.md}
HYPERFINE=${HYPERFINE:-1}

if [[ -z "${DPGUI:-}" ]]; then
    echo "history.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private copy: other work may rebuild target/release while this runs.
cp "$DPGUI" "$tmp/dpgui"
DPGUI_SRC=$DPGUI

if [[ ! -s "$DATA" ]]; then
    echo "history.sh: generating $DATA ($SIZE bytes)" >&2
    mkdir -p "$(dirname "$DATA")"
    python3 benches/history_gen.py "$DATA" --size "$SIZE" >&2
fi
DATA=$(realpath "$DATA")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
stat0=$(head -1 /proc/stat)

PYTHONPATH="$(pwd)/benches" python3 - "$DATA" "$tmp/dpgui" "$RUNS" "$tmp/timer.json" <<'EOF'
import json, os, subprocess, sys, time
data, dpgui, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cmds = {
    "grep": ["grep", "-c", "^steps:", data],
    "dpgui": [dpgui, "__scan-history", data],
    "grep_c_locale": ["grep", "-c", "^steps:", data],
}
envs = {"grep": None, "dpgui": None, "grep_c_locale": dict(os.environ, LC_ALL="C")}

def run(name):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmds[name], stdout=subprocess.PIPE, env=envs[name])
    stdout = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        sys.exit(f"{cmds[name]} failed: {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, stdout.decode().strip()

# Warm-up: the file through the page cache, then each command once.
with open(data, "rb") as f:
    while f.read(16 << 20):
        pass
outputs = {n: run(n)[2] for n in cmds}
res = {n: {"wall": [], "cpu": []} for n in cmds}
order = list(cmds)
for i in range(runs):
    for n in (order if i % 2 == 0 else order[::-1]):
        wall, cpu, _ = run(n)
        res[n]["wall"].append(wall)
        res[n]["cpu"].append(cpu)
    print(f"history.sh: round {i + 1}/{runs}: " + ", ".join(
        f"{n} {res[n]['wall'][-1]:.3f} s" for n in order), file=sys.stderr)
json.dump({"outputs": outputs, "results": res, "size": os.path.getsize(data)}, open(out, "w"))
EOF

if [[ "$HYPERFINE" == 1 ]] && command -v hyperfine >/dev/null; then
    # --output=pipe: with stdout on /dev/null GNU grep stops at the first match (as with -q).
    hyperfine --warmup 1 --runs "$RUNS" --style basic --output=pipe --export-json "$tmp/hyperfine.json" \
        -n "grep -c '^steps:'" "grep -c '^steps:' '$DATA'" \
        -n "dpgui __scan-history" "'$tmp/dpgui' __scan-history '$DATA'" \
        -n "LC_ALL=C grep -c '^steps:'" "LC_ALL=C grep -c '^steps:' '$DATA'" >&2
else
    echo '{}' >"$tmp/hyperfine.json"
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stat1=$(head -1 /proc/stat)

cmd="benches/history.sh"
[[ "$SIZE" == 1000000000 ]] || cmd="SIZE=$SIZE $cmd"
[[ "$RUNS" == 10 ]] || cmd="RUNS=$RUNS $cmd"
mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$(pwd)/benches" python3 - "$tmp/timer.json" "$tmp/hyperfine.json" "$OUT" "$cmd" \
    "$DATA" "$DPGUI_SRC" "$load0" "$load1" "$stat0" "$stat1" "$(grep --version | head -1)" <<'EOF'
import json, os, platform, statistics, sys, time
from report_common import cpu_model, git
timer, hf, out, cmd, data, binary, load0, load1, stat0, stat1, grepv = sys.argv[1:12]
t = json.load(open(timer))
h = json.load(open(hf))
r = t["results"]
med = {n: statistics.median(v["wall"]) for n, v in r.items()}
cpu = {n: statistics.median(v["cpu"]) for n, v in r.items()}
ratio = med["dpgui"] / med["grep"]
ratio_c = med["dpgui"] / med["grep_c_locale"]
a = [int(x) for x in stat0.split()[1:]]
b = [int(x) for x in stat1.split()[1:]]
d = [y - x for x, y in zip(a, b)]
busy = (os.cpu_count() or 1) * (sum(d[:8]) - d[3] - d[4]) / max(1, sum(d[:8]))
scan = json.loads(t["outputs"]["dpgui"])
size = t["size"]
dirty = " (with local changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
verdict = "met" if ratio <= 3 else "MISSED"
lines = [
    "# Reading a 1 GB rank log's progress history",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `{cmd}` on {os.cpu_count()} CPU(s) "
    f"({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}; release build (`{binary}`), {grepv}, "
    f"locale {os.environ.get('LC_ALL') or os.environ.get('LANG') or 'unset'}.",
    "",
    f"Load: the machine is shared with other work: load average {load0} before, {load1} after; "
    f"{busy:.2f} of {os.cpu_count()} cores busy machine-wide during the measurements "
    "(both commands are single-threaded).",
    "",
    f"File: `{os.path.relpath(data)}`, {size:,} bytes ({size / 2**30:.2f} GiB), generated by "
    "`benches/history_gen.py`; hot in the page cache (read once, then a warm-up run of each "
    f"command). {len(r['dpgui']['wall'])} runs of each, alternating (order flipped every round); "
    "stdout is read through a pipe (with stdout on /dev/null GNU grep stops at the first match).",
    "",
    "Target: `dpgui __scan-history` within 3x the time of `grep -c '^steps:'`.",
    "",
    "| Command | median wall [s] | min [s] | max [s] | median CPU (user+sys) [s] | GB/s | vs grep |",
    "|:---|---:|---:|---:|---:|---:|---:|",
]
names = {"grep": "`grep -c '^steps:' FILE`", "dpgui": "`dpgui __scan-history FILE`",
         "grep_c_locale": "`LC_ALL=C grep -c '^steps:' FILE` (reference)"}
for n in ["grep", "dpgui", "grep_c_locale"]:
    w = r[n]["wall"]
    lines.append(f"| {names[n]} | {med[n]:.3f} | {min(w):.3f} | {max(w):.3f} | {cpu[n]:.3f} | "
                 f"{size / med[n] / 1e9:.2f} | {med[n] / med['grep']:.2f}x |")
lines += [
    "",
    f"**Ratio dpgui / grep: {ratio:.2f}x (target <= 3x): {verdict}.** Against the C-locale grep: "
    f"{ratio_c:.2f}x.",
    "",
    f"What each found: grep counted {t['outputs']['grep']} `steps:` lines; dpgui: step "
    f"{scan.get('step')}, epoch {scan.get('epoch')}, loss {scan.get('loss')}, steps/epoch "
    f"{scan.get('steps_per_epoch')}, {scan.get('loss_points')} loss points kept.",
    "",
    "Every run (wall s):",
    "",
]
for n in ["grep", "dpgui", "grep_c_locale"]:
    lines.append(f"- {n}: " + ", ".join(f"{x:.3f}" for x in r[n]["wall"]))
if h.get("results"):
    lines += ["", "hyperfine cross-check (each command's runs back to back, --warmup 1):", "",
              "| Command | mean [s] | stddev [s] | median [s] | min [s] | max [s] |",
              "|:---|---:|---:|---:|---:|---:|"]
    for x in h["results"]:
        lines.append(f"| `{x['command']}` | {x['mean']:.3f} | {x['stddev']:.3f} | "
                     f"{x['median']:.3f} | {x['min']:.3f} | {x['max']:.3f} |")
    hm = {x["command"]: x["median"] for x in h["results"]}
    hr = hm.get("dpgui __scan-history", 0) / max(hm.get("grep -c '^steps:'", 1e-9), 1e-9)
    lines += ["", f"hyperfine ratio (medians): {hr:.2f}x."]
lines.append("")
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
echo "history.sh: wrote $OUT" >&2
