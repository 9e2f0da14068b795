#!/usr/bin/env python3
"""Synthetic diffusion-pipe rank logs for benches/tail.sh.

Appends to RANKS files `<job_dir>/ranks/20260101000000_rank{0..RANKS-1}.log` at RATE lines/s
each for SECONDS, in batches every BATCH_MS (so the rate is smooth), then writes
`<job_dir>/writer.json` with what it wrote and how well it kept the rate.

Every line carries ` ts=<CLOCK_MONOTONIC ns when written> seq=<n>` (n counts lines per rank
from 0): at its end, but before the filler of the 20,000-byte lines (the tailer cuts those) and
in the segment after the last `\\r` of a tqdm line (the one a terminal shows). The text
is diffusion-pipe-like: rank 0 prints DeepSpeed `steps: N loss: ... iter time (s): ...
samples/sec: ...` lines (every STEP_EVERY-th line, so its progress parser and loss chart are fed)
and `[Rank 0] step=N, skipped=0, lr=[...]` lines; all ranks print DeepSpeed `[INFO]` lines whose
`[YYYY-MM-DD HH:MM:SS,mmm]` prefix is the real wall-clock time of the write (benches/tail.sh reads
it off the screen of the real dashboard), torch warnings, tqdm `\\r` redraws (every 50th line), a
600-byte line every 200th line and a 20,000-byte line (longer than the tailer's 16 KiB line cap)
every 2,000th line.

With --punch-holes MIB, every second the part of each file more than MIB MiB before its end is
deallocated (fallocate PUNCH_HOLE | KEEP_SIZE): the files keep growing as far as any reader can
tell (size, offsets), but a long run does not fill the disk (33 MiB/s at the defaults). Only
bytes far behind the tailer (which reads what was appended within the last 100 ms) are punched.

Usage: tail_writer.py JOB_DIR [--seconds 30] [--rate 20000] [--ranks 8] [--batch-ms 5]
                      [--step-every 10] [--punch-holes MIB]
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import resource
import time

PERIOD = 2000  # the line pattern repeats every PERIOD lines


def templates(rank, step_every):
    """PERIOD %-format strings, each taking (prefix, n, ts, seq); n is a step-like counter."""
    out = []
    for i in range(PERIOD):
        loss = 0.05 + 0.1 * ((i * 7919) % 97) / 97
        if i % 2000 == 1999:
            t = "%s [INFO] [engine.py:2155:_take_model_step] [Rank " + str(rank) + "] n=%d long ts=%d seq=%d " + "x" * 20000 + "\n"
        elif i % 200 == 199:
            t = "%s [WARNING] [stage_1_and_2.py:1931:step] [Rank " + str(rank) + "] n=%d " + "overflow! skipping step, reducing loss scale " * 13
        elif i % 50 == 49:
            t = (" 41%%|████      | 410/1000 [00:10<00:14, 40.10it/s]\r 42%%|████▏     | 420/1000 "
                 "[00:10<00:14, 40.20it/s]\r%s caching latents:  43%%|████▎     | %d/1000 [00:10<00:14, 40.30it/s]")
        elif rank == 0 and i % step_every == 0:
            t = "steps: %%.0s%%d loss: %.4f iter time (s): 0.050 samples/sec: 80.000" % loss
        elif rank == 0 and i % step_every == 1:
            t = "%s [INFO] [logging.py:107:log_dist] [Rank 0] step=%d, skipped=0, lr=[2e-05, 2e-05], mom=[(0.9, 0.99), (0.9, 0.99)]"
        elif i % 10 == 5:
            t = ("%s /venv/lib/python3.12/site-packages/torch/utils/checkpoint.py:91: UserWarning: None of "
                 "the inputs have requires_grad=True. Gradients will be None (n=%d)")
        elif i % 10 == 7:
            t = "%s [INFO] [comm.py:658:init_distributed] cdb=None rank=" + str(rank) + " micro_step=%d"
        else:
            t = "%s [INFO] [timer.py:264:stop] epoch=0/micro_step=%d/global_step=1, RunningAvgSamplesPerSec=41.3, CurrSamplesPerSec=40.9, MemAllocated=14.2GB, MaxMemAllocated=18.9GB"
        # A line longer than the tailer's cap keeps its start: the stamp goes first there.
        out.append(t if t.endswith("\n") else t + " ts=%d seq=%d\n")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("job_dir")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--batch-ms", type=float, default=5)
    ap.add_argument("--step-every", type=int, default=10)
    ap.add_argument("--punch-holes", type=int, default=0, metavar="MIB")
    a = ap.parse_args()
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    punched = [0] * a.ranks
    next_punch = 0.0

    rdir = os.path.join(a.job_dir, "ranks")
    os.makedirs(rdir, exist_ok=True)
    fds = [os.open(os.path.join(rdir, f"20260101000000_rank{r}.log"),
                   os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for r in range(a.ranks)]
    tpls = [templates(r, a.step_every) for r in range(a.ranks)]
    written = [0] * a.ranks
    nbytes = [0] * a.ranks
    batch = a.batch_ms / 1000
    max_behind = 0.0
    max_gap = 0.0
    batches = 0
    t0 = time.monotonic()
    last = t0
    end = t0 + a.seconds
    next_t = t0
    while True:
        now = time.monotonic()
        if now >= end:
            now = end
        max_gap = max(max_gap, now - last)
        last = now
        due = int(a.rate * (now - t0))
        # Wall-clock prefix, once per batch (all its lines are written at the same instant).
        wall = time.time()
        prefix = time.strftime("[%Y-%m-%d %H:%M:%S", time.localtime(wall)) + ",%03d]" % (int(wall * 1000) % 1000)
        for r in range(a.ranks):
            n0 = written[r]
            if due <= n0:
                continue
            tp = tpls[r]
            ts = time.monotonic_ns()
            data = "".join([tp[s % PERIOD] % (prefix, s // 10, ts, s) for s in range(n0, due)]).encode()
            os.write(fds[r], data)
            written[r] = due
            nbytes[r] += len(data)
        batches += 1
        if a.punch_holes and now >= next_punch:
            next_punch = now + 1
            for r in range(a.ranks):
                upto = (nbytes[r] - (a.punch_holes << 20)) // 4096 * 4096
                if upto > punched[r]:
                    # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
                    if libc.fallocate(fds[r], 3, ctypes.c_long(punched[r]),
                                      ctypes.c_long(upto - punched[r])) == 0:
                        punched[r] = upto
        if now >= end:
            break
        next_t += batch
        behind = time.monotonic() - next_t
        if behind > 0:
            max_behind = max(max_behind, behind)
            next_t = time.monotonic()
        else:
            time.sleep(-behind)
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rep = {
        "seconds": a.seconds,
        "wall_s": wall,
        "ranks": a.ranks,
        "rate_target": a.rate,
        "step_every": a.step_every,
        "lines_per_rank": written,
        "lines_total": sum(written),
        "achieved_lines_per_s_per_rank": sum(written) / a.ranks / a.seconds,
        "bytes_total": sum(nbytes),
        "mib_per_s_total": sum(nbytes) / a.seconds / 2**20,
        "batches": batches,
        "max_gap_between_batches_ms": max_gap * 1000,
        "max_behind_schedule_ms": max_behind * 1000,
        "writer_cpu_pct_one_core": 100 * (ru.ru_utime + ru.ru_stime) / wall,
        "bytes_punched": sum(punched),
    }
    for fd in fds:
        os.close(fd)
    tmp = os.path.join(a.job_dir, ".writer.json.tmp")
    with open(tmp, "w") as f:
        json.dump(rep, f)
    os.rename(tmp, os.path.join(a.job_dir, "writer.json"))
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
