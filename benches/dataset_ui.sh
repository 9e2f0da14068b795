#!/usr/bin/env bash
# The dashboard while a big dataset is scanned: the Datasets tab drawn at the dashboard's 30 fps
# (200x60, ratatui TestBackend) for 5 idle seconds, then for 5 seconds while the same
# 100,000-image dataset as benches/dataset_scan.sh is scanned afresh (no scan cache), one scan
# after another, by the tab's own background scan (`dpgui __bench-scan-ui`, src/tui/bench.rs: the
# scan workers, the progress bar redrawn every frame). Target (issue): the frame rate does not
# drop while the scan runs.
#
# Usage: benches/dataset_ui.sh
# Knobs: COUNT (100000), RUNS (3), DPGUI (target/release/dpgui, built unless set),
#        OUT (benches/results/dataset_ui.md), DATA (target/bench-data/dataset-100k).
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${COUNT:-100000}
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results/dataset_ui.md}
DATA=${DATA:-target/bench-data/dataset-100k}

if [[ -z "${DPGUI:-}" ]]; then
    echo "dataset_ui.sh: cargo build --release" >&2
    cargo build --release >&2
    DPGUI=target/release/dpgui
fi
python3 -c 'import PIL' 2>/dev/null || {
    venv=target/bench-venv-pil
    [[ -x $venv/bin/python ]] || { python3 -m venv "$venv" && "$venv/bin/pip" -q install pillow; }
    PATH=$PWD/$venv/bin:$PATH
}
python3 benches/dataset_scan_gen.py "$DATA" --count "$COUNT" >&2

results=()
for i in $(seq "$RUNS"); do
    results+=("$("$DPGUI" __bench-scan-ui "$DATA.toml" --idle 5)")
done

PYTHONPATH=benches python3 - "$OUT" "$COUNT" "${results[@]}" <<'PY'
import json, sys
from report_common import cpu_model, git
out, count, runs = sys.argv[1], int(sys.argv[2]), [json.loads(r) for r in sys.argv[3:]]
lines = [
    "# Datasets tab frame rate while a dataset is scanned",
    "",
    f"`benches/dataset_ui.sh`, commit {git('rev-parse', '--short', 'HEAD')}, {cpu_model()}, "
    f"{count:,} images scanned afresh. Frames drawn on a 30 fps schedule (the dashboard's); "
    "late = how far behind schedule a frame started.",
    "",
    "| run | phase | fps | late p50 | late p99 | late max | draw p99 | scan |",
    "|---|---|---|---|---|---|---|---|",
]
for i, r in enumerate(runs, 1):
    for phase in ("idle", "scanning"):
        p = r[phase]
        scan = (f"{r['scans']} scans of {r['files']:,} files, {r['scan_secs']:.2f} s each"
                if phase == "scanning" else "")
        lines.append(f"| {i} | {phase} | {p['fps']:.1f} | {p['late_p50_ms']:.2f} ms | "
                     f"{p['late_p99_ms']:.2f} ms | {p['late_max_ms']:.2f} ms | "
                     f"{p['draw_p99_ms']:.2f} ms | {scan} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
