"""Generates a flat image dataset for benches/dataset_scan.sh: COUNT small images, mixed
PNG/JPEG/WebP in varied sizes and aspect ratios, named img0000000.<ext>, plus a dataset config
that points at it (OUT_DIR.toml). Reusable: an OUT_DIR.complete marker records what was made; a
rerun with the same arguments does nothing, an interrupted or different one starts over.

A pool of distinct encoded images (every size x format) is made once with PIL, then written out
round-robin, so 100,000 files take seconds, not minutes: the benchmark reads headers, and header
sizes vary across the pool.

Usage: python3 benches/dataset_scan_gen.py OUT_DIR [--count 100000]
"""
import argparse
import io
import json
import os
import shutil
import sys

from PIL import Image


def pool():
    sizes = []
    for w in (16, 24, 33, 48, 64, 80, 96, 127):
        for h in (16, 21, 40, 64, 72, 96, 120):
            sizes.append((w, h))
    out = []
    for i, (w, h) in enumerate(sizes):
        img = Image.new("RGB", (w, h), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
        for fmt, ext, kw in (("PNG", "png", {}), ("JPEG", "jpg", {"quality": 80}),
                             ("WEBP", "webp", {"quality": 80})):
            buf = io.BytesIO()
            img.save(buf, fmt, **kw)
            out.append((ext, w, h, buf.getvalue()))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=100_000)
    a = ap.parse_args()
    out = os.path.abspath(a.out).rstrip("/")
    # Beside the directory, not in it: nothing but the images is in the dataset.
    marker = out + ".complete"
    want = {"count": a.count, "version": 1}
    try:
        if json.load(open(marker)) == want:
            print(f"dataset_scan_gen: {a.out} already has {a.count} images", file=sys.stderr)
            return
    except (OSError, ValueError):
        pass
    if os.path.exists(marker):
        os.remove(marker)
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    p = pool()
    counts = {}
    for i in range(a.count):
        ext, _, _, data = p[(i * 7) % len(p)]
        with open(os.path.join(a.out, f"img{i:07d}.{ext}"), "wb") as f:
            f.write(data)
        counts[ext] = counts.get(ext, 0) + 1
    with open(out + ".toml", "w") as f:
        f.write(f"# benches/dataset_scan_gen.py: {a.count} images\n"
                "resolutions = [512]\nenable_ar_bucket = true\n"
                f"[[directory]]\npath = '{out}'\n")
    with open(marker, "w") as f:
        json.dump(want, f)
    print(f"dataset_scan_gen: wrote {a.count} images to {a.out}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
