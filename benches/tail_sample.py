#!/usr/bin/env python3
"""Samples a running dashboard for benches/tail.sh while the writer runs.

Every INTERVAL s (jittered) for SECONDS: the process's CPU (utime + stime from /proc/PID/stat) and VmRSS,
and, with --tmux-socket/--tmux-target, what the screen shows: the newest DeepSpeed wall-clock
prefix `[YYYY-MM-DD HH:MM:SS,mmm]` visible in the pane (tail_writer.py stamps each batch with the
time it was written), so "now - newest visible" is how stale the screen is (an upper bound on the
latency of the newest line; +1 ms of prefix resolution). Prints one JSON object.

Usage: tail_sample.py PID --seconds 60 [--interval 1] [--tmux-socket NAME --tmux-target T]
(TMUX_TMPDIR from the environment selects the private tmux server.)
"""
import argparse
import json
import os
import random
import re
import subprocess
import time

STAMP = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def newest_on_screen(sock, target):
    out = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", target],
                         capture_output=True, text=True).stdout
    best = None
    for m in STAMP.finditer(out):
        t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
        best = t if best is None or t > best else best
    return best


def every_10s(live):
    out, due = [], 0
    for s in live:
        if s["t"] >= due:
            out.append(round(s["rss_kib"] / 1024, 1))
            due += 10
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--interval", type=float, default=1)
    ap.add_argument("--tmux-socket")
    ap.add_argument("--tmux-target")
    a = ap.parse_args()

    samples = []
    t0 = time.monotonic()
    c0 = cpu_ticks(a.pid)
    next_t = t0
    while True:
        now = time.monotonic()
        if now - t0 > a.seconds:
            break
        try:
            s = {"t": now - t0, "cpu_ticks": cpu_ticks(a.pid) - c0,
                 "rss_kib": status_kib(a.pid, "VmRSS")}
        except OSError:
            samples.append({"t": now - t0, "exited": True})
            break
        if a.tmux_socket:
            newest = newest_on_screen(a.tmux_socket, a.tmux_target)
            if newest is not None:
                s["stale_ms"] = (time.time() - newest) * 1000
        samples.append(s)
        # Jittered (0.5-1.5 intervals) so that the screen samples do not lock onto one phase of
        # the dashboard's 100 ms poll.
        next_t += a.interval * random.uniform(0.5, 1.5)
        time.sleep(max(0, next_t - time.monotonic()))
    wall = time.monotonic() - t0
    c1 = cpu_ticks(a.pid)
    live = [s for s in samples if "rss_kib" in s]
    stale = sorted(s["stale_ms"] for s in live if "stale_ms" in s)
    # CPU over 5 s windows, to see whether it drifts or spikes.
    per, w0 = [], live[0] if live else None
    for q in live[1:]:
        if q["t"] - w0["t"] >= 5:
            per.append(100 * (q["cpu_ticks"] - w0["cpu_ticks"]) / HZ / (q["t"] - w0["t"]))
            w0 = q
    rep = {
        "wall_s": wall,
        "cpu_s": (c1 - c0) / HZ,
        "cpu_pct_one_core": 100 * (c1 - c0) / HZ / wall,
        "cpu_pct_max_5s": max(per) if per else None,
        "rss_max_mib": max(s["rss_kib"] for s in live) / 1024 if live else None,
        "rss_first_mib": live[0]["rss_kib"] / 1024 if live else None,
        "rss_last_mib": live[-1]["rss_kib"] / 1024 if live else None,
        "hwm_mib": status_kib(a.pid, "VmHWM") / 1024,
        "threads": status_kib(a.pid, "Threads"),
        "rss_mib_every_10s": every_10s(live),
        "stale_samples": len(stale),
        "stale_ms_median": stale[len(stale) // 2] if stale else None,
        "stale_ms_max": stale[-1] if stale else None,
        "tick_s": 1 / HZ,
    }
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
