"""Headless Chromium, launched one way for the report's tests, the scale bench and the README's
pictures. Debian's `chromium` (which .ci/run installs) through Playwright; no TensorFlow."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator

ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def missing() -> str | None:
    """Why no browser can be launched here, or None."""
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (.ci/run installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed"
    return None


@contextlib.contextmanager
def chromium() -> Iterator:
    """A launched playwright Browser, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=list(ARGS))
        try:
            yield browser
        finally:
            browser.close()
