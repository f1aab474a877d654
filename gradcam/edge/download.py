"""Downloading the export from its signed URL: on object storage on another host, so with a plain
`requests` session that has never seen the API key; retried when cut short or not a zip, then an
error that says what happened."""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter

from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")

RETRY_STATUSES = (429, 500, 502, 503, 504)


def retry_policy(attempts: int = 6) -> urllib3.Retry:
    """Backoff 0.5 s, 1 s, 2 s ... (max 30 s) with jitter; GET only; Retry-After honoured."""
    return urllib3.Retry(
        total=attempts,
        backoff_factor=0.5,
        backoff_jitter=0.5,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _session() -> requests.Session:
    """A session for the signed URL: it has never seen the API key."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry_policy()))
    session.mount("https://", HTTPAdapter(max_retries=retry_policy()))
    return session


def _fetch(session: requests.Session, url: str, target: Path, timeout: float) -> str | None:
    """One download of `url` to `target`: None when it is a complete zip, else what went wrong."""
    response, size, expected, last_log = None, 0, None, time.monotonic()
    try:
        with session.get(url, stream=True, timeout=timeout) as response:
            if not response.ok:
                return f"the export download failed: HTTP {response.status_code} {response.reason}"
            if "Content-Length" in response.headers:
                expected = int(response.headers["Content-Length"])
            with open(target, "wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
                    size += len(chunk)
                    if time.monotonic() - last_log >= 5:
                        last_log = time.monotonic()
                        total = f" of {expected / 1e6:.1f}" if expected else ""
                        log.info("downloading the export: %.1f%s MB", size / 1e6, total)
    except requests.RequestException as exc:
        if response is None:
            return f"the export download could not reach {urllib3.util.parse_url(url).host} ({type(exc).__name__})"
        size = response.raw.tell()  # the bytes received, including the chunk that was cut off
        if isinstance(exc, requests.ConnectionError | requests.Timeout) and "timed out" in str(exc):
            return f"the export download stalled for {timeout:.0f}s (got {size} of {expected or '?'} bytes)"
    if expected is not None and size != expected:
        return f"the export download was cut short (got {size} of {expected} bytes)"
    if not zipfile.is_zipfile(target):
        return f"the downloaded export is not a zip file that opens ({size} bytes)"
    return None


def download(url: str, target: Path, timeout: float, attempts: int = 3) -> Path:
    """Stream a signed URL to disk without any API key; a failed or short download is retried,
    then an error that says what happened."""
    session, started = _session(), time.monotonic()
    for attempt in range(1, attempts + 1):
        problem = _fetch(session, url, target, timeout)
        if problem is None:
            log.info("downloaded the export (%d bytes) in %.1fs", target.stat().st_size, time.monotonic() - started)
            return target
        if attempt < attempts:
            log.warning("%s; retrying", problem)
    raise GradcamError(f"{problem}; tried {attempts} times")
