#!/usr/bin/env python3
"""Writes benches/results/launch_cycles.md from benches/launch_cycles.py's JSON lines."""
import json
import os
import platform
import statistics
import sys
import time

from report_common import cpu_model, git

(jsonl, out, cmd, binary, versions, load0, load1, stat0, stat1, total_s) = sys.argv[1:11]
recs, summary = [], {}
for line in open(jsonl):
    r = json.loads(line)
    if r.get("summary"):
        summary = r
    else:
        recs.append(r)

a = [int(x) for x in stat0.split()[1:]]
b = [int(x) for x in stat1.split()[1:]]
d = [y - x for x, y in zip(a, b)]
busy = (os.cpu_count() or 1) * (sum(d[:8]) - d[3] - d[4]) / max(1, sum(d[:8]))


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    vals.sort()
    return (f"median {statistics.median(vals):.2f} s, min {vals[0]:.2f}, "
            f"max {vals[-1]:.2f} (n={len(vals)})")


def held(r):
    return bool(r.get("port_listening_after")) or not r.get("port_bindable_after", True)


plain = [r for r in recs if r["kind"] == "stop"]
# A failed launch, no first step, or a stop command that exited non-zero.
errors = [r for r in recs if r.get("error") or r.get("stop_rc")]
left_cycles = sum(r.get("leftover", 0) for r in recs)
held_cycles = sum(1 for r in recs if held(r))
final_left = summary.get("leftover_total")
final_held = summary.get("ports_held", [])
ok_plain = [r for r in plain if not r.get("error")]
met = (len(ok_plain) >= 50 and left_cycles == 0 and held_cycles == 0 and final_left == 0
       and not final_held and not errors)
dirty = " (with local changes)" if git("status", "--porcelain", "--untracked-files=no") else ""

lines = [
    "# Launch/stop cycles of a 2-rank job",
    "",
    f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `{cmd}` on {os.cpu_count()} CPU(s) "
    f"({cpu_model()}), Linux {platform.release()}, commit "
    f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}; release build (`{binary}`); "
    f"{versions}; the diffusion-pipe stand-in `tests/fixtures/dp_checkout/train.py` (CPU ranks "
    "on gloo, DS_ACCELERATOR=cpu). Stop ladder graces: SIGINT 2 s, SIGTERM 2 s.",
    "",
    f"Load: the machine is shared with other work: load average {load0} before, {load1} after; "
    f"{busy:.2f} of {os.cpu_count()} cores busy machine-wide over the {int(total_s) / 60:.1f} "
    "min run (the jobs' own processes included).",
    "",
    "Per cycle: `dpgui launch --gpus 0,1 --port auto` (an epoch of 100,000 steps), wait for rank "
    "0's first `steps:` line, stop, wait for the job's supervisor to exit, then count processes "
    "with `DPGUI_JOB_ID=<id>` in /proc/*/environ (zombies apart) and whether the job's port is "
    "held (LISTEN in /proc/net/tcp{,6}, or a bind with SO_REUSEADDR fails).",
    "",
    "| Target | Result | |",
    "|:---|:---|:---:|",
    f"| 50 launch/stop cycles | {len(ok_plain)} plain stops (`dpgui stop ID`) completed"
    f"{', plus ' + str(len(recs) - len(plain)) + ' kill/save-and-stop cycles' if len(recs) > len(plain) else ''}; "
    f"{len(errors)} cycle(s) with an error | {'met' if len(ok_plain) >= 50 and not errors else 'MISSED'} |",
    f"| 0 leftover processes | {left_cycles} after the cycles' stops in all; {final_left} tagged "
    f"process(es) alive at the end ({summary.get('leftover_zombies_total', 0)} zombies) | "
    f"{'met' if left_cycles == 0 and final_left == 0 else 'MISSED'} |",
    f"| 0 ports held | {held_cycles} cycle(s) with the port still held after the stop; "
    f"{len(final_held)} of {len(summary.get('ports_used', []))} distinct ports held at the end | "
    f"{'met' if held_cycles == 0 and not final_held else 'MISSED'} |",
    "",
    f"**Overall: {'met' if met else 'MISSED'}.**",
    "",
    "Times per cycle:",
    "",
    f"- launch command returns: {stats([r.get('launch_s') for r in recs])}",
    f"- launch until rank 0's first `steps:` line: {stats([r.get('first_step_s') for r in recs])}",
]
for kind, label in (("stop", "`dpgui stop ID --json`"), ("kill", "`dpgui stop ID --kill --yes --json`"),
                    ("save", "`dpgui stop ID --save --json`")):
    rs = [r for r in recs if r["kind"] == kind]
    if not rs:
        continue
    fates = {}
    for r in rs:
        for k, v in (r.get("fates") or {}).items():
            fates[k] = fates.get(k, 0) + v
    states = {}
    for r in rs:
        states[r.get("state")] = states.get(r.get("state"), 0) + 1
    lines += [
        f"- {label} ({len(rs)} cycles): command {stats([r.get('stop_s') for r in rs])}; until the "
        f"supervisor exited {stats([r.get('supervisor_exit_s') for r in rs])}; escalated to SIGKILL "
        f"in {sum(1 for r in rs if r.get('escalated'))}; fates {json.dumps(fates)}; final states "
        f"{json.dumps(states)}",
    ]
lines += [
    f"- whole cycle: {stats([r.get('cycle_s') for r in recs])}",
    f"- processes of a job before its stop: "
    f"{sorted(set(r.get('processes_before') for r in recs if r.get('processes_before') is not None))}",
    "",
    "Every cycle (times in s from the launch command; stop = the stop command's own time):",
    "",
    "| # | kind | job | port | first step | stop | supervisor gone | state | fates | left | port held |",
    "|---:|:---|:---|---:|---:|---:|---:|:---|:---|---:|:---:|",
]
for r in recs:
    f = lambda k: f"{r[k]:.1f}" if isinstance(r.get(k), (int, float)) else "-"
    fates = ", ".join(f"{k} {v}" for k, v in (r.get("fates") or {}).items())
    lines.append(
        f"| {r['cycle']} | {r['kind']} | {r.get('job', '-')} | {r.get('port', '-')} | "
        f"{f('first_step_s')} | {f('stop_s')} | {f('supervisor_exit_s')} | {r.get('state', '-')} | "
        f"{fates or '-'} | {r.get('leftover', '-')} | {'yes' if held(r) else 'no'} |")
if errors:
    lines += ["", "Errors:", ""]
    for r in errors:
        why = r.get("error") or f"stop exited {r.get('stop_rc')}: {r.get('stop_stderr', '')}"
        lines.append(f"- cycle {r['cycle']} ({r['kind']}): {why}")
lines += ["", "Final check:", "", "```json", json.dumps(summary), "```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:30]))
