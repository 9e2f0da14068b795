#!/usr/bin/env python3
"""Writes benches/results/tail.md from the files benches/tail.sh left in its scratch dir."""
import json
import os
import platform
import sys
import time

from report_common import cpu_model, git

(tmp, out, cmd, binary, load_a0, load_a1, stat_a0, stat_a1, load_b0, load_b1, stat_b0,
 stat_b1) = sys.argv[1:13]


def load(name):
    try:
        with open(os.path.join(tmp, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def busy_cores(s0, s1):
    """CPU cores busy machine-wide between two `cpu` lines of /proc/stat (everything: the
    writer, dpgui, other work)."""
    if not s0 or not s1:
        return None
    a = [int(x) for x in s0.split()[1:]]
    b = [int(x) for x in s1.split()[1:]]
    d = [y - x for x, y in zip(a, b)]
    total = sum(d[:8])
    idle = d[3] + d[4]
    return (os.cpu_count() or 1) * (total - idle) / total if total else None


a, aw, b, bw = load("a.json"), load("a.writer.json"), load("b.json"), load("b.writer.json")
screen = open(os.path.join(tmp, "b.screen")).read().rstrip("\n") if os.path.exists(
    os.path.join(tmp, "b.screen")) else ""


def verdict(ok):
    if ok is None:
        return "-"
    return "met" if ok else "MISSED"


def f(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


dirty = " (with local changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
busy_a, busy_b = busy_cores(stat_a0, stat_a1), busy_cores(stat_b0, stat_b1)
lat = a.get("latency_ms", {})
written_a = aw.get("lines_total")
seen_a = a.get("lines_seen")
lines = [
    "# Following 8 fast rank logs",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `{cmd}` on {os.cpu_count()} CPU(s) "
    f"({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}; release build (`{os.path.relpath(binary)}`).",
    "",
    "Load: the machine is shared with other work. Run A: load average "
    f"{load_a0} before, {load_a1} after; {f(busy_a, '{:.2f}')} of {os.cpu_count()} cores busy "
    "machine-wide during the run (writer and dpgui included)."
    + (f" Run B: load average {load_b0} before, {load_b1} after; {f(busy_b, '{:.2f}')} cores busy."
       if load_b0 else " Run B skipped."),
    "",
    f"Writer (`benches/tail_writer.py`): {aw.get('ranks', '?')} rank logs x "
    f"{aw.get('rate_target', '?')} lines/s, 5 ms batches. Run A: achieved "
    f"{f(aw.get('achieved_lines_per_s_per_rank'), '{:,.0f}')} lines/s per rank over "
    f"{f(aw.get('seconds'), '{:.0f}')} s ({f(aw.get('lines_total'), '{:,}')} lines, "
    f"{f(aw.get('mib_per_s_total'))} MiB/s in all), at most "
    f"{f(aw.get('max_behind_schedule_ms'))} ms behind schedule, writer CPU "
    f"{f(aw.get('writer_cpu_pct_one_core'))}% of one core."
    + (f" Run B: {f(bw.get('achieved_lines_per_s_per_rank'), '{:,.0f}')} lines/s per rank over "
       f"{f(bw.get('seconds'), '{:.0f}')} s ({f(bw.get('lines_total'), '{:,}')} lines), at most "
       f"{f(bw.get('max_behind_schedule_ms'))} ms behind." if bw else ""),
    "",
    "- **A** `dpgui __bench-tail JOB_DIR` (src/tui/bench.rs): per 100 ms tick `JobLogs::poll`, "
    "rank 0's history on a thread, the whole Jobs view drawn at 200x60 into a ratatui "
    "TestBackend; every line handed over timed from its write (CLOCK_MONOTONIC stamp in the "
    "line) to the end of the frame drawn after the poll that read it.",
    "- **B** the real dashboard `dpgui --fake-gpus 8 attach JOB` in a detached 200x60 tmux pane "
    "(terminal output, GPU feed, process/port scans and job list refresh included); CPU ticks and "
    "VmRSS of the process every 0.5 s (jittered); screen staleness = now - newest write time visible on "
    "the screen (tmux capture-pane, same samples).",
    "",
    "| Target | A: `__bench-tail` | B: real dashboard | |",
    "|:---|:---|:---|:---:|",
]
stale_max = b.get("stale_ms_max")
ok_lat = None
if lat:
    ok_lat = lat.get("max", 1e9) <= 250 and a.get("lines_missing", 1) == 0 and (
        written_a is None or seen_a == written_a)
    if stale_max is not None:
        ok_lat = ok_lat and stale_max <= 250
lines.append(
    "| every line shown within 250 ms | "
    f"max {f(lat.get('max'))} ms, p99.9 {f(lat.get('p999'))}, p99 {f(lat.get('p99'))}, "
    f"p50 {f(lat.get('p50'))}; {f(seen_a, '{:,}')} of {f(written_a, '{:,}')} lines seen, "
    f"{a.get('lines_missing', '?')} missing, {lat.get('over_250ms', '?')} over 250 ms | "
    f"screen staleness max {f(stale_max)} ms, median {f(b.get('stale_ms_median'))} ms "
    f"({b.get('stale_samples', 0)} samples) | {verdict(ok_lat)} |")
cpu_a = a.get("cpu_pct_one_core")
cpu_b = b.get("cpu_pct_one_core")
ok_cpu = None if cpu_a is None else cpu_a < 25 and (cpu_b is None or cpu_b < 25)
lines.append(
    "| dpgui under 25% of one core | "
    f"{f(cpu_a)}% ({f(a.get('cpu_s'), '{:.2f}')} s CPU in {f(a.get('seconds'))} s; "
    f"{f(a.get('cpu_pct_one_core_without_bookkeeping'))}% without the bench's own line "
    f"bookkeeping) | {f(cpu_b)}% mean ({f(b.get('cpu_s'), '{:.2f}')} s CPU in "
    f"{f(b.get('wall_s'))} s), worst 5 s window {f(b.get('cpu_pct_max_5s'))}% | "
    f"{verdict(ok_cpu)} |")
hwm_a = a.get("vm_hwm_mib")
rss_b = b.get("rss_max_mib")
ok_mem = None if hwm_a is None else hwm_a < 100 and (rss_b is None or (
    rss_b < 100 and b.get("hwm_mib", 0) < 100))
lines.append(
    "| memory under 100 MB, bounded | "
    f"peak RSS (VmHWM) {f(hwm_a)} MiB; RSS {f((a.get('rss_mib_every_s') or [[0, None]])[0][1])} "
    f"MiB at start, {f(a.get('vm_rss_end_mib'))} MiB at the end | RSS max {f(rss_b)} MiB, "
    f"VmHWM {f(b.get('hwm_mib'))} MiB; {f(b.get('rss_first_mib'))} MiB at the first sample, "
    f"{f(b.get('rss_last_mib'))} MiB at the last | {verdict(ok_mem)} |")
lines += [
    "",
    "Run A details:",
    "",
    f"- ticks {a.get('ticks')}, frames drawn {a.get('frames')}, ticks that started over 50 ms late "
    f"{a.get('late_ticks')}; at most {f(a.get('max_lines_one_tick'), '{:,}')} lines in one tick",
    f"- per tick: poll (read + split + progress) p50 {f(a.get('poll', {}).get('p50_ms'), '{:.2f}')} ms, "
    f"p99 {f(a.get('poll', {}).get('p99_ms'), '{:.2f}')} ms, max {f(a.get('poll', {}).get('max_ms'), '{:.2f}')} ms; "
    f"draw p50 {f(a.get('draw', {}).get('p50_ms'), '{:.2f}')} ms, p99 "
    f"{f(a.get('draw', {}).get('p99_ms'), '{:.2f}')} ms, max {f(a.get('draw', {}).get('max_ms'), '{:.2f}')} ms",
    f"- rank 0 progress at the end: step {a.get('progress_step')}, "
    f"{f(a.get('progress_loss_points'), '{:,}')} loss points; history loaded after "
    f"{f(a.get('history_loaded_ms'), '{:.0f}')} ms; {f(a.get('ring_lines_end'), '{:,}')} lines held in "
    f"the panes' rings at the end",
    f"- lines not stamped (markers) {a.get('lines_unstamped')}, evicted before measured "
    f"{a.get('lines_evicted_before_measured')}",
    "- RSS [MiB] every 5 s: "
    + ", ".join(f"{r[1]:.1f}" for r in (a.get("rss_mib_every_s") or [])[::5]),
]
if b:
    sps = bw.get("rate_target", 20000) / bw.get("step_every", 10)
    lines += [
        "",
        "Run B details:",
        "",
        f"- RSS [MiB] every 10 s: {', '.join(str(x) for x in b.get('rss_mib_every_10s', []))} "
        f"(rank 0's loss history reaches its cap of 100,000 points after "
        f"{100000 / sps:.0f} s at {sps:,.0f} steps/s, each pane's ring its 5,000 lines within a "
        f"second); "
        f"threads {b.get('threads')}; CPU resolution {f(b.get('tick_s', 0) * 1000, '{:.0f}')} ms",
    ]
lines += [
    "",
    "Raw JSON (A: `__bench-tail`, A writer, B sampler, B writer):",
    "",
    "```json",
    json.dumps(a),
    json.dumps(aw),
    json.dumps(b),
    json.dumps(bw),
    "```",
]
if screen:
    lines += ["", "Screen at the end of run B:", "", "```"]
    lines += [l.rstrip() for l in screen.split("\n")]
    lines += ["```"]
lines.append("")
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:30]))
