"""The PIL side of benches/dataset_scan.sh: what diffusion-pipe does to learn each image's size
(utils/dataset.py: the top level of the directory, sorted, skipping non-files and the ignored
suffixes, then `Image.open(p).size` per file, failures skipped). Prints one JSON line: files
opened, sizes read, failures, seconds (time.perf_counter around the loop, listing included).

Usage: python3 benches/dataset_scan_pil.py DIR [--procs N]
  --procs N: N worker processes (multiprocessing.Pool.imap, chunks of 256), as diffusion-pipe's
             datasets.map(num_proc=min(8, cpu_count)) spreads the work; default 1: a plain loop.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

IGNORED = ('.txt', '.npz', '.json', '.parquet', '.bak', '.db')


def size_of(p):
    try:
        with Image.open(p) as im:
            return im.size
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--procs", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    files = sorted(Path(a.dir).glob('*'))
    files = [f for f in files if f.is_file() and f.suffix not in IGNORED]
    if a.procs > 1:
        import multiprocessing
        with multiprocessing.Pool(a.procs) as pool:
            sizes = list(pool.imap(size_of, [str(f) for f in files], chunksize=256))
    else:
        sizes = [size_of(f) for f in files]
    elapsed = time.perf_counter() - t0
    ok = [s for s in sizes if s is not None]
    print(json.dumps({
        "files": len(files), "sizes": len(ok), "failed": len(sizes) - len(ok),
        "seconds": elapsed, "sum_w": sum(s[0] for s in ok), "sum_h": sum(s[1] for s in ok),
    }))


if __name__ == "__main__":
    sys.exit(main())
