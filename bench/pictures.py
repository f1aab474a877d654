"""Do two runs' pictures look the same? PSNR of every JPEG the two deploy.zips share, decoded.

For a change to the drawing or the encoding: run the job before and after on the same export, then

    .venv/bin/python bench/pictures.py before/deploy.zip after/deploy.zip

prints the number of pictures compared, the lowest and median PSNR (dB; OpenCV's, which gives
equal pictures 361 dB), the share at 40 dB or more and the share identical. Stops with a message
when the two hold different pictures or sizes.
"""

from __future__ import annotations

import argparse
import sys
import zipfile

import cv2
import numpy as np


def compare(before: str, after: str) -> list[float]:
    """Each shared picture's PSNR; SystemExit when the two zips hold different pictures or sizes."""
    with zipfile.ZipFile(before) as old, zipfile.ZipFile(after) as new:
        names = {n for n in old.namelist() if n.endswith(".jpg")}
        other = {n for n in new.namelist() if n.endswith(".jpg")}
        if names != other:
            raise SystemExit(f"different pictures: {len(names - other)} only before, {len(other - names)} only after")
        scores = []
        for name in sorted(names):
            a, b = (cv2.imdecode(np.frombuffer(z.read(name), np.uint8), cv2.IMREAD_COLOR) for z in (old, new))
            if a.shape != b.shape:
                raise SystemExit(f"{name}: {a.shape} before, {b.shape} after")
            scores.append(cv2.PSNR(a, b))  # 361 dB where they are equal
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    scores = np.array(compare(args.before, args.after))
    print(
        f"{len(scores)} pictures: PSNR lowest {scores.min():.1f} dB, median {np.median(scores):.1f} dB; "
        f"{np.mean(scores >= 40):.1%} at 40 dB or more, {np.mean(scores > 360):.1%} identical"
    )


if __name__ == "__main__":
    sys.exit(main())
