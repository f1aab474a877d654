"""The Edge Impulse API: project, impulse, Keras metadata, model download, the test-set export.

API calls go through the official `edgeimpulse-api` client; idempotent requests (GET) are
retried with exponential backoff and jitter on connection errors, timeouts, 5xx and 429
(honouring Retry-After) by urllib3, and every request has a timeout. The export's signed URL
points at object storage on another host: it is fetched with a plain `requests` session that has
never seen the API key. The key never appears in a message: errors are redacted.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import edgeimpulse_api as ei
import requests
import urllib3
from requests.adapters import HTTPAdapter

from gradcam.choices import DEFAULT_HOST
from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")
IMAGE_LEARN_BLOCKS = (
    "keras-transfer-image",
    "keras",
    "keras-regression",
    "keras-akida-transfer-image",
    "keras-akida",
    "keras-object-detection",  # FOMO only: other detectors are refused by KerasMetadata.check
)
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


@dataclass(frozen=True)
class KerasMetadata:
    """What the job reads from a Keras learn block's metadata."""

    classes: list[str]  # in model output order (object detection: without the background)
    mode: str | None  # classification, regression, object-detection
    input_scaling: str
    last_layer: str | None  # object detection: fomo, mobilenet-ssd, yolov5, ...
    detection_threshold: float | None  # object detection: minConfidenceRating, when the block sets it

    def check(self, learn_type: str) -> None:
        """Refuse object detectors other than FOMO: their outputs are boxes, not a grid of cells."""
        if self.mode == "object-detection" and self.last_layer not in (None, "fomo"):
            raise GradcamError(
                f"the learn block ({learn_type}) is a {self.last_layer} object detector: only FOMO "
                "object detection models can be explained (their output is a grid of cells, not boxes)"
            )


def _threshold(thresholds: list[dict], key: str = "minConfidenceRating") -> float | None:
    """A learn block's threshold (BlockThreshold JSON objects) by key, when it is a number."""
    for item in thresholds:
        value = item.get("value") if isinstance(item, dict) else None
        if item.get("key") == key and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


@dataclass(frozen=True)
class ImpulseInfo:
    """What the job needs to know about the project's impulse."""

    project_id: int
    impulse_id: int | None
    learn_id: int
    learn_type: str
    classes: list[str]
    mode: str  # classification / regression / object-detection
    input_scaling: str
    image_shape: tuple[int, int, int] | None  # (height, width, channels)
    resize_mode: str | None
    detection_threshold: float | None = None  # FOMO: the learn block's minConfidenceRating


def base_url(host: str) -> str:
    host = host.rstrip("/")
    if host.endswith("/v1"):
        host = host[:-3]
    return host if host.startswith(("http://", "https://")) else f"https://{host}"


class StudioClient:
    """A project's view of Studio, with one API key."""

    def __init__(
        self, api_key: str, host: str = DEFAULT_HOST, timeout: float = 60.0, poll_max: float = 10.0, retries: int = 6
    ):
        if not api_key:
            raise GradcamError("no API key: pass --api-key or set EI_API_KEY")
        self._key = api_key
        self.timeout = timeout
        self.poll_max = poll_max
        config = ei.Configuration(host=f"{base_url(host)}/v1")
        config.api_key["ApiKeyAuthentication"] = api_key
        config.retries = retry_policy(retries)
        self._client = ei.ApiClient(config)

    # -- plumbing --------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return text.replace(self._key, "ei_***") if self._key else text

    def _call(self, what: str, fn: Callable, *args, **kwargs):
        """Call the API with a timeout; failures and `success: false` become one clear error."""
        try:
            response = fn(*args, _request_timeout=self.timeout, **kwargs)
        except ei.exceptions.ApiException as exc:
            detail = f"HTTP {exc.status} {exc.reason}"
            if exc.status in (401, 403):
                detail += " (is the API key valid for this project?)"
            raise GradcamError(self.redact(f"Studio API: {what} failed: {detail}")) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise GradcamError(self.redact(f"Studio API: {what} failed: {type(exc).__name__}: {exc}")) from None
        if getattr(response, "success", True) is False:
            raise GradcamError(self.redact(f"Studio API: {what} failed: {response.error or 'no reason given'}"))
        return response

    # -- project and impulse ---------------------------------------------------------------

    def project_id(self) -> int:
        """The key's own project (an API key sees only its project)."""
        projects = self._call("listing projects", ei.ProjectsApi(self._client).list_projects).projects
        if len(projects) != 1:
            names = ", ".join(f"{p.id} ({p.name})" for p in projects) or "none"
            raise GradcamError(f"the API key sees {len(projects)} projects ({names}); choose one with --project-id")
        log.info("project %s (%s)", projects[0].id, projects[0].name)
        return projects[0].id

    def impulse(self, project_id: int, impulse_id: int | None = None) -> ImpulseInfo:
        """Image size, resize mode and colour depth from the impulse; classes, mode and input scaling
        from the Keras learn block's metadata."""
        impulse = self._call(
            "reading the impulse", ei.ImpulseApi(self._client).get_impulse, project_id, impulse_id
        ).impulse
        if impulse is None:
            raise GradcamError(f"project {project_id} has no impulse; create and train one first")
        learn_id, _, _ = choose_learn_block([(b.id, _enum(b.type), b.name) for b in impulse.learn_blocks])
        image = next((b for b in impulse.input_blocks if b.type == "image"), None)
        if image is None:
            raise GradcamError(f"project {project_id}'s impulse has no image input block")
        learn = next(b for b in impulse.learn_blocks if b.id == learn_id)
        channels = self._channels(project_id, impulse.dsp_blocks, learn.dsp)
        keras = self.keras_metadata(project_id, learn.id, _enum(learn.type))
        shape = (image.image_height, image.image_width, channels) if image.image_width and image.image_height else None
        return ImpulseInfo(
            project_id=project_id,
            impulse_id=impulse_id,
            learn_id=learn.id,
            learn_type=_enum(learn.type),
            classes=keras.classes,
            mode=keras.mode,
            input_scaling=keras.input_scaling,
            image_shape=shape,
            resize_mode=_enum(image.resize_mode),
            detection_threshold=keras.detection_threshold,
        )

    def keras_metadata(self, project_id: int, learn_id: int, learn_type: str) -> KerasMetadata:
        """A Keras learn block's class names, mode, input scaling and (object detection) kind of
        detector and threshold; a detector other than FOMO is refused."""
        what = "reading the Keras metadata"
        raw = self._call(
            what, ei.LearnApi(self._client).get_keras_metadata, project_id, learn_id, _preload_content=False
        )
        try:
            body = json.loads(raw.data)
        except ValueError:
            raise GradcamError(f"Studio API: {what} failed: the answer is not JSON") from None
        if body.get("success") is False:
            raise GradcamError(self.redact(f"Studio API: {what} failed: {body.get('error') or 'no reason given'}"))
        # The client's model cannot read `thresholds` (its float-or-string values match both
        # types, which it refuses): they are read here, the rest by the client's model.
        thresholds = body.pop("thresholds", None) or []
        metadata = ei.KerasModelMetadata.from_dict(body | {"thresholds": []})
        keras = KerasMetadata(
            list(metadata.class_names),
            _enum(metadata.mode),
            _enum(metadata.image_input_scaling) or "0..1",
            _enum(metadata.object_detection_last_layer),
            _threshold(thresholds),
        )
        keras.check(learn_type)
        return keras

    def _channels(self, project_id: int, dsp_blocks: list, wanted: list[int]) -> int:
        block = next((b for b in dsp_blocks if b.id in wanted and b.type == "image"), None)
        if block is None:
            return 3
        config = self._call("reading the DSP config", ei.DSPApi(self._client).get_dsp_config, project_id, block.id)
        for group in config.config or []:
            for item in group.items:
                if item.param == "channels":
                    return 1 if (item.value or item.default_value) == "Grayscale" else 3
        return 3

    # -- downloads -------------------------------------------------------------------------

    def download_model(self, project_id: int, learn_id: int, target: Path) -> Path:
        """The trained Keras model: a zip holding model.h5."""
        response = self._call(
            "downloading the model",
            ei.LearnApi(self._client).download_learn_model,
            project_id,
            learn_id,
            "tflite-h5",
            _preload_content=False,
        )
        target.write_bytes(response.data)
        log.info("downloaded the model (%d bytes)", len(response.data))
        return target

    def export_dataset(self, project_id: int, target: Path, timeout: float = 1800.0) -> Path:
        """Start an "export original" job, wait for it, download the zip it made."""
        jobs = ei.JobsApi(self._client)
        request = ei.ExportOriginalDataRequest(uploader_friendly_filenames=True, retain_crops=True)
        job_id = self._call("starting the export job", jobs.start_original_export_job, project_id, request).id
        log.info("export job %s started", job_id)
        started = time.monotonic()
        deadline = started + timeout
        job = self._wait(project_id, job_id, deadline)
        log.info("export job %s finished after %.0fs", job_id, time.monotonic() - started)
        if not job.finished_successful:
            raise GradcamError(f"the export job {job_id} failed{self._last_logs(project_id, job_id)}")
        url = self._fresh_export_url(project_id, job.created, deadline)
        return download(url, target, self.timeout)

    def _poll(self, fetch: Callable, ready: Callable, deadline: float, late: Callable, waiting=None):
        """fetch() until ready(answer), sleeping 1 s, 1.5 s, ... (at most poll_max) in between;
        past the deadline, an error with late(answer) as its message."""
        delay = 1.0
        while True:
            answer = fetch()
            if ready(answer):
                return answer
            if waiting is not None:
                waiting(answer)
            if time.monotonic() + delay > deadline:
                raise GradcamError(late(answer))
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)

    def _wait(self, project_id: int, job_id: int, deadline: float):
        started = time.monotonic()
        status = functools.partial(
            self._call, "polling the export job", ei.JobsApi(self._client).get_job_status, project_id, job_id
        )
        return self._poll(
            lambda: status().job,
            ready=lambda job: job.finished,
            deadline=deadline,
            late=lambda job: f"the export job {job_id} did not finish in time (see --export-timeout)",
            waiting=lambda job: log.info("export job %s still running (%.0fs)", job_id, time.monotonic() - started),
        )

    def _last_logs(self, project_id: int, job_id: int, lines: int = 10) -> str:
        try:
            logs = self._call("reading the job logs", ei.JobsApi(self._client).get_jobs_logs, project_id, job_id, lines)
        except GradcamError:
            return ""
        text = " | ".join((item.data or "").strip() for item in logs.stdout[-lines:] if (item.data or "").strip())
        return f"; its last log lines: {self.redact(text)}" if text else ""

    def _fresh_export_url(self, project_id: int, job_created: datetime, deadline: float) -> str:
        """The export made by our job: an export created before the job started is stale."""

        def fresh(export) -> bool:
            return export.has_export and export.url and (export.created is None or export.created >= job_created)

        def late(export) -> str:
            found = f"only an export from {export.created}" if export.has_export else "no export"
            return f"Studio offers {found}, older than the export job started at {job_created}"

        fetch = functools.partial(
            self._call, "asking for the export URL", ei.ExportApi(self._client).get_export_url, project_id
        )
        return self._poll(fetch, fresh, deadline, late).url


def _enum(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def choose_learn_block(blocks: list[tuple[int, str, str]]) -> tuple[int, str, str]:
    """The Keras image classification, regression or object detection block among (id, type, name),
    not blindly the first learn block (an impulse may also hold an anomaly block); classification
    and regression first."""
    by_type = {block[1]: block for block in reversed(blocks)}
    for kind in IMAGE_LEARN_BLOCKS:
        if kind in by_type:
            learn_id, _, name = by_type[kind]
            log.info("learn block %s (%s, id %s)", name, kind, learn_id)
            return by_type[kind]
    found = ", ".join(f"{name} ({kind})" for _, kind, name in blocks) or "none"
    raise GradcamError(
        f"the impulse has no Keras image classification, regression or object detection block (found: {found})"
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
