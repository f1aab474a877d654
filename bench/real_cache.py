"""The real-model evaluation set's files that ../shared/real/ does not hold, copied into a local cache from
public repositories (never into this repository): photos and models, as bench/real_models.py and the
tests read them. Each source is a git checkout or mirror of the repository at the commit named here
(docs/trust.md lists them with their licences).

    python bench/real_cache.py --repo Mjrovai/EdgeML-with-Raspberry-Pi=/path/to/its/git/dir ...

The cache is GRADCAM_REAL_CACHE, else ~/.cache/gradcam-block/real.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("GRADCAM_REAL_CACHE", Path.home() / ".cache" / "gradcam-block" / "real"))

# What each repository gives: (commit, [(path in the repository, path in the cache)], [(photo folder, cache
# export, label from the folder's name)]).
SOURCES = {
    "Mjrovai/EdgeML-with-Raspberry-Pi": (
        "ec578d59dde8b6d94566f282c0be741b16053e7a",
        [("IMG_CLASS/models/ei-raspi-img-class-int8-quantized-model.tflite", "raspi-img-class-int8.tflite")],
        [("IMG_CLASS/dataset", "periquito", lambda folder: folder)],
    ),
    "Mjrovai/Arduino_Nicla_Vision": (
        "bba61da443e00152318c0fb09b4557823cf6d608",
        [],
        [("data", "nicla", lambda folder: folder.removesuffix(".class"))],
    ),
}
# The dataset folder's copies of images already in it under another name (Mjrovai's README pictures).
DUPLICATES = {"background.jpg", "periquito.jpg", "robot.jpg"}


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True).stdout


def export(git_dir: Path, commit: str, folder: str, target: Path, label_of) -> int:
    """The photos under `folder` (one sub-folder per class) as an Edge Impulse export: testing/ and info.labels."""
    names = _git(git_dir, "ls-tree", "-r", "--name-only", commit, folder).decode().splitlines()
    files = []
    (target / "testing").mkdir(parents=True, exist_ok=True)
    for name in sorted(names):
        parts = Path(name).relative_to(folder).parts
        if len(parts) != 2 or not name.lower().endswith(".jpg") or parts[1] in DUPLICATES:
            continue
        label = label_of(parts[0])
        path = f"testing/{label}.{parts[1]}"
        (target / path).write_bytes(_git(git_dir, "show", f"{commit}:{name}"))
        files.append({"path": path, "category": "testing", "label": {"type": "label", "label": label}})
    (target / "info.labels").write_text(json.dumps({"version": 1, "files": files}))
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", action="append", default=[], help="owner/name=git directory (repeat)")
    for given in parser.parse_args().repo:
        name, git_dir = given.split("=", 1)
        commit, files, folders = SOURCES[name]
        CACHE.mkdir(parents=True, exist_ok=True)
        for source, target in files:
            (CACHE / target).write_bytes(_git(Path(git_dir), "show", f"{commit}:{source}"))
            print(f"{name}: {source} -> {CACHE / target}")
        for folder, target, label_of in folders:
            count = export(Path(git_dir), commit, folder, CACHE / target, label_of)
            print(f"{name}: {count} photos of {folder} -> {CACHE / target}")


if __name__ == "__main__":
    main()
