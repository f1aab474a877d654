"""make bench's scale row: the offline job on 5,000 and 50,000 small JPEGs (64x64, as many Edge
Impulse datasets are) with the trained MobileNetV2, each in a fresh process, and its report opened
from the unzipped deploy.zip in Chromium (driven by Playwright), all in one run.

Per size: wall time (start-up included), peak RSS (VmHWM), deploy.zip's size, the report's time to
its first gallery image (from navigation, the median of three loads), and how long a sort, a
filter and a search take to redraw the gallery (measured in the page, layout included).

    .venv/bin/python bench/scale.py MODEL.h5 [--sizes 5000 50000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from browser import chromium, missing
from common import make_export, peak_rss

FIRST_IMAGE = (
    "() => { const img = document.querySelector('#gallery img'); return img && img.complete && img.naturalWidth > 0; }"
)
# One control changed as a user changes it; the milliseconds until the gallery is redrawn and laid out.
CHANGE = """([id, value]) => {
  const control = document.getElementById(id), start = performance.now();
  control.value = value;
  control.dispatchEvent(new Event(id === "search" ? "input" : "change"));
  document.body.offsetHeight;
  return performance.now() - start;
}"""
CHANGES = {"sort": ["sort", "faithfulness-asc"], "filter": ["outcome", "incorrect"], "search": ["search", "001"]}


def report_timings(index: Path, loads: int = 3) -> dict[str, float] | None:
    """Seconds to the first gallery image (median of `loads`), and the slowest redraw per change in
    seconds; None without Chromium or Playwright."""
    if missing():
        return None
    firsts, changes = [], {name: 0.0 for name in CHANGES}
    with chromium() as browser:
        for _ in range(loads):
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(index.as_uri(), wait_until="commit")
            page.wait_for_function(FIRST_IMAGE, polling="raf", timeout=120_000)
            firsts.append(time.perf_counter() - start)
            page.wait_for_selector("body[data-ready]", state="attached", timeout=120_000)  # the whole index in
            for name, change in CHANGES.items():
                changes[name] = max(changes[name], page.evaluate(CHANGE, change) / 1000)
            page.close()
    return {"first": statistics.median(firsts), **changes}


def measure(model: Path, n: int, tmp: Path) -> dict:
    export = make_export(tmp / f"scale-{n}.zip", n, seed=4, size=(64, 64))
    out = tmp / f"scale-{n}"
    rss, seconds = peak_rss(model, export, out)
    deploy = out / "deploy.zip"
    folder = tmp / f"scale-{n}-unzipped"
    with zipfile.ZipFile(deploy) as archive:
        archive.extractall(folder)
    sizes = {name: (folder / name).stat().st_size / 1e6 for name in ("index.html", "results.json")}
    timings = report_timings(folder / "index.html")
    shutil.rmtree(folder)
    export.unlink()
    return {"n": n, "seconds": seconds, "rss": rss, "zip": deploy.stat().st_size / 1e6, **sizes, "report": timings}


def scale_lines(model: Path, tmp: Path, sizes: tuple[int, ...] = (5000, 50000)) -> list[str]:
    """The scale table and its ratios, as markdown lines."""
    rows = [measure(model, n, tmp) for n in sizes]
    lines = [
        "Scale (MobileNetV2, 64x64 JPEGs, defaults; the report opened over file:// in Chromium; one run):",
        "",
        "| samples | wall | img/s | peak RSS | deploy.zip | index.html | results.json "
        "| report: first gallery image | sort | filter | search |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        report = r["report"]
        timings = (
            [f"{report[k]:.2f} s" for k in ("first", "sort", "filter", "search")] if report else ["(no Chromium)"] * 4
        )
        lines.append(
            f"| {r['n']:,} | {r['seconds']:.0f} s | {r['n'] / r['seconds']:.0f} | {r['rss']:.0f} MiB "
            f"| {r['zip']:.0f} MB | {r['index.html'] * 1000:.0f} KB | {r['results.json']:.1f} MB | "
            + " | ".join(timings)
            + " |"
        )
    small, big = rows[0], rows[-1]
    ratios = f"Peak RSS at {big['n']:,} / at {small['n']:,}: {big['rss'] / small['rss']:.2f} (target <= 1.2)"
    if small["report"] and big["report"]:
        ratios += (
            f"; the report's first image: {big['report']['first'] / small['report']['first']:.2f}x (target <= 2); "
            f"the slowest redraw at {big['n']:,}: "
            f"{max(big['report'][k] for k in CHANGES):.2f} s (target <= 0.3)"
        )
    return [*lines, "", ratios + "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gradcam-scale-") as tmp:
        print("\n".join(scale_lines(args.model, Path(tmp), tuple(args.sizes))))


if __name__ == "__main__":
    main()
