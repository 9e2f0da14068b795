#!/usr/bin/env python3
"""A realistic diffusion-pipe rank 0 log of about SIZE bytes, for benches/history.sh.

A caching phase (tqdm bars redrawn with `\\r`, `caching latents` lines), then training: per step a
DeepSpeed `steps: N loss: L iter time (s): T samples/sec: S` line and a `[Rank 0] step=N,
skipped=0, lr=[...], mom=[...]` line; every 10 steps a DeepSpeed timer INFO line; every 100 steps
a torch UserWarning; every 1,000 steps an eval (`Running eval`, a tqdm bar redrawn 20 times with
`\\r`, an eval loss line); every 2,500 steps a checkpoint and a save; `Started new epoch: E` every
STEPS_PER_EPOCH (5,000) steps; every 50,000 steps a 100 kB line (a dumped tensor). Deterministic.

Usage: history_gen.py PATH [--size 1000000000]
Prints the number of `steps:` lines written.
"""
import argparse
import math
import os

STEPS_PER_EPOCH = 5000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--size", type=float, default=1e9)
    a = ap.parse_args()
    size = int(a.size)
    tmp = a.path + ".tmp"
    out = open(tmp, "wb", buffering=8 << 20)
    n = 0

    def w(s):
        nonlocal n
        b = s.encode()
        out.write(b)
        n += len(b)

    pre = "[2026-01-01 00:00:00,000] [INFO] "
    w(pre + "[real_accelerator.py:254:get_accelerator] Setting ds_accelerator to cuda (auto detect)\n")
    w("[2026-01-01 00:00:01,000] [INFO] [comm.py:658:init_distributed] cdb=None\n")
    w("Global batch size = 8\n")
    # Caching: tqdm bars redrawn in place.
    for part in range(20):
        w(f"caching latents: /data/images/part{part}\n")
        bar = []
        for i in range(0, 1001, 5):
            pct = i // 10
            fill = "█" * (pct // 10)
            bar.append(f"Map (num_proc=8): {pct:3d}%|{fill:<10}| {i * 37}/37000 [00:{i % 60:02d}<00:10, 3650.20 examples/s]")
        w("\r".join(bar) + "\n")
    w(pre + "[config.py:1000:print] DeepSpeedEngine configuration:\n")
    step = 0
    steps_lines = 0
    epoch = 1
    while n < size:
        step += 1
        loss = 0.08 + 0.05 * math.sin(step / 97.0) + 0.02 * ((step * 7919) % 101) / 101
        it = 1.9 + 0.1 * ((step * 31) % 17) / 17
        w(f"steps: {step} loss: {loss:.4f} iter time (s): {it:.3f} samples/sec: {8 / it:.3f}\n"
          f"[2026-01-01 01:{step // 60 % 60:02d}:{step % 60:02d},{step % 1000:03d}] [INFO] "
          f"[logging.py:107:log_dist] [Rank 0] step={step}, skipped=0, lr=[2e-05, 2e-05], "
          f"mom=[(0.9, 0.99), (0.9, 0.99)]\n")
        steps_lines += 1
        if step % 10 == 0:
            w(pre + f"[timer.py:264:stop] epoch=0/micro_step={step}/global_step={step}, "
              "RunningAvgSamplesPerSec=4.1, CurrSamplesPerSec=4.2, MemAllocated=14.2GB, "
              "MaxMemAllocated=18.9GB\n")
        if step % 100 == 0:
            w("/venv/lib/python3.12/site-packages/torch/utils/checkpoint.py:91: UserWarning: None "
              "of the inputs have requires_grad=True. Gradients will be None\n"
              "  warnings.warn(\n")
        if step % 1000 == 0:
            w("Running eval\n")
            w("\r".join(f"eval: {p * 5:3d}%|{'█' * (p // 2):<10}| {p}/20 [00:0{p % 10}<00:05, 3.9it/s]"
                        for p in range(21)) + "\n")
            w(f"eval_loss: {loss * 1.1:.4f}\n")
        if step % 2500 == 0:
            w(f"Checkpoint global_step{step} is about to be saved!\n")
            w(f"Saving model to directory step{step}\n")
        if step % 50000 == 0:
            w("tensor([" + ", ".join(f"{((i * 2654435761) % 1000) / 1000:.4f}" for i in range(12500)) + "])\n")
        if step % STEPS_PER_EPOCH == 0:
            epoch += 1
            w(f"Started new epoch: {epoch}\n")
    out.close()
    os.rename(tmp, a.path)
    print(steps_lines)


if __name__ == "__main__":
    main()
