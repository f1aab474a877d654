"""The Edge Impulse API: project, impulse, Keras metadata, model download, the test-set export.

API calls go through the official `edgeimpulse-api` client; idempotent requests (GET) are
retried with exponential backoff and jitter on connection errors, timeouts, 5xx and 429
(honouring Retry-After) by urllib3, and every request has a timeout. The export's signed URL is
fetched by gradcam.edge.download, without the API key. The key never appears in a message:
errors are redacted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import edgeimpulse_api as ei
import urllib3

from gradcam.choices import DEFAULT_HOST
from gradcam.edge.download import download, retry_policy
from gradcam.edge.dsp import DspData
from gradcam.edge.impulse import (
    ImageResize,
    ImpulseInfo,
    KerasMetadata,
    choose_learn_block,
    enum_value,
    feature_blocks,
    threshold_of,
)
from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")


KERAS = "tflite-h5"  # the download id of a Keras learn block's model.h5 zip


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
        self.api_client = ei.ApiClient(config)

    # -- plumbing --------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return text.replace(self._key, "ei_***") if self._key else text

    def call(self, what: str, fn: Callable, *args, **kwargs):
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
        projects = self.call("listing projects", ei.ProjectsApi(self.api_client).list_projects).projects
        if len(projects) != 1:
            names = ", ".join(f"{p.id} ({p.name})" for p in projects) or "none"
            raise GradcamError(f"the API key sees {len(projects)} projects ({names}); choose one with --project-id")
        log.info("project %s (%s)", projects[0].id, projects[0].name)
        return projects[0].id

    def impulse(self, project_id: int, impulse_id: int | None = None) -> ImpulseInfo:
        """Image size, resize mode and colour depth from the impulse; classes, mode and input scaling
        from the Keras learn block's metadata."""
        impulse = self.call(
            "reading the impulse", ei.ImpulseApi(self.api_client).get_impulse, project_id, impulse_id
        ).impulse
        if impulse is None:
            raise GradcamError(f"project {project_id} has no impulse; create and train one first")
        learn_id, _, _ = choose_learn_block([(b.id, enum_value(b.type), b.name) for b in impulse.learn_blocks])
        learn = next(b for b in impulse.learn_blocks if b.id == learn_id)
        keras = self.keras_metadata(project_id, learn.id, enum_value(learn.type))
        image = next((b for b in impulse.input_blocks if enum_value(b.type) == "image"), None)
        info = ImpulseInfo(
            project_id=project_id,
            impulse_id=impulse_id,
            learn_id=learn.id,
            learn_type=enum_value(learn.type),
            classes=keras.classes,
            mode=keras.mode,
            input_scaling=keras.input_scaling,
            image_shape=None,
            resize=ImageResize(),
            detection_threshold=keras.detection_threshold,
        )
        if image is None:  # a time-series impulse (audio): the model reads its DSP blocks' features
            by_id, dsp_data = {b.id: b for b in impulse.dsp_blocks}, DspData(self)
            dsp = [dsp_data.block(project_id, by_id[i]) for i in learn.dsp if i in by_id]
            blocks = feature_blocks(dsp, learn.name)
            for block in blocks:
                shape = "" if block.shape is None else f", {block.shape[0]} frames x {block.shape[1]}"
                log.info("the model reads the features of %s (%s, id %s%s)", block.name, block.type, block.id, shape)
            return dataclasses.replace(info, features=blocks)
        channels = self._channels(project_id, impulse.dsp_blocks, learn.dsp)
        shape = (image.image_height, image.image_width, channels) if image.image_width and image.image_height else None
        resize = ImageResize(enum_value(image.resize_mode), image.resize_method, image.crop_anchor)
        return dataclasses.replace(info, image_shape=shape, resize=resize)

    def keras_metadata(self, project_id: int, learn_id: int, learn_type: str) -> KerasMetadata:
        """A Keras learn block's class names, mode, input scaling and (object detection) kind of
        detector and threshold; a detector other than FOMO is refused."""
        what = "reading the Keras metadata"
        raw = self.call(
            what, ei.LearnApi(self.api_client).get_keras_metadata, project_id, learn_id, _preload_content=False
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
            enum_value(metadata.mode),
            enum_value(metadata.image_input_scaling) or "0..1",
            enum_value(metadata.object_detection_last_layer),
            threshold_of(thresholds),
        )
        keras.check(learn_type)
        return keras

    def _channels(self, project_id: int, dsp_blocks: list, wanted: list[int]) -> int:
        block = next((b for b in dsp_blocks if b.id in wanted and b.type == "image"), None)
        if block is None:
            return 3
        config = self.call("reading the DSP config", ei.DSPApi(self.api_client).get_dsp_config, project_id, block.id)
        for group in config.config or []:
            for item in group.items:
                if item.param == "channels":
                    return 1 if (item.value or item.default_value) == "Grayscale" else 3
        return 3

    # -- downloads -------------------------------------------------------------------------

    def download_model(self, project_id: int, learn_id: int, target: Path, download_id: str = KERAS) -> Path:
        """A trained model of the learn block: by default the Keras model, a zip holding model.h5."""
        response = self.call(
            "downloading the model",
            ei.LearnApi(self.api_client).download_learn_model,
            project_id,
            learn_id,
            download_id,
            _preload_content=False,
        )
        target.write_bytes(response.data)
        log.info("downloaded the model %s (%d bytes)", download_id, len(response.data))
        return target

    def tflite_download(self, project_id: int) -> str | None:
        """The download id of the project's TFLite model: int8 (what devices run) where it offers one,
        else float32; None when it offers neither."""
        listed = self.call("listing the model downloads", ei.ProjectsApi(self.api_client).list_downloads, project_id)
        offered = {d.type: d.id for d in listed.downloads if d.id and d.type.startswith("TensorFlow Lite")}
        for kind in ("int8", "float32"):
            found = next((i for name, i in offered.items() if kind in name), None)
            if found:
                return found
        return None

    def export_dataset(self, project_id: int, target: Path, timeout: float = 1800.0) -> Path:
        """Start an "export original" job, wait for it, download the zip it made."""
        jobs = ei.JobsApi(self.api_client)
        request = ei.ExportOriginalDataRequest(uploader_friendly_filenames=True, retain_crops=True)
        job_id = self.call("starting the export job", jobs.start_original_export_job, project_id, request).id
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
            self.call, "polling the export job", ei.JobsApi(self.api_client).get_job_status, project_id, job_id
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
            logs = self.call(
                "reading the job logs", ei.JobsApi(self.api_client).get_jobs_logs, project_id, job_id, lines
            )
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
            self.call, "asking for the export URL", ei.ExportApi(self.api_client).get_export_url, project_id
        )
        return self._poll(fetch, fresh, deadline, late).url
