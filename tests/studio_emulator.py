"""A local Studio: the Edge Impulse API calls the block makes, with faults on request.

The API is served on 127.0.0.1; the export's signed link points at a second server on
127.0.0.2, as Studio's point at object storage on another host. Every request is recorded with
its headers, so tests can check where the API key went. Responses follow the `edgeimpulse-api`
models (tests/test_studio.py validates them), so the emulator cannot drift from the real API.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT_ID = 4242
IMPULSE_ID = 1
DSP_ID = 31
LEARN_ID = 19


@dataclass
class Faults:
    """What should go wrong. Counters say how many times (then it behaves)."""

    server_errors: int = 0  # 503 for the first N API GETs
    rate_limited: int = 0  # 429 with Retry-After: 1 for the first N API GETs
    job_fails: bool = False
    stale_export: int = 0  # get-url answers with an export older than the job N times (-1: always)
    truncated_downloads: int = 0  # the first N downloads stop halfway (-1: always)
    corrupt_downloads: int = 0  # the first N downloads are complete but not a zip (-1: always)
    slow_seconds: float = 0.0  # the first `slow_count` API GETs take this long
    slow_count: int = 0
    polls_until_done: int = 3  # job status polls before the job finishes


@dataclass
class DspOutput:
    """One DSP block of a time-series impulse: its type and name, its output's shape (frames x columns;
    output: spectrogram, or flat: no frames), its features as npy bytes and its parameters."""

    dsp_type: str
    name: str
    frames: int
    columns: int
    features: bytes
    parameters: dict
    output: str = "spectrogram"


@dataclass
class AudioProject:
    """A time-series impulse (audio): what its DSP block serves, its features and labels as npy
    bytes, and its metadata."""

    features: bytes
    labels: bytes
    samples: list[tuple[int, int]]  # (sample id, windows) in row order
    parameters: dict  # the DSP block's parameters
    frames: int
    columns: int
    dsp_type: str = "mfe"
    window_ms: int = 1000
    increase_ms: int = 500
    frequency: int = 16000
    wavs: dict = field(default_factory=dict)  # sample id -> its audio as WAV (others: 404)
    more: list[DspOutput] = field(default_factory=list)  # further DSP blocks feeding the learn block, in order
    axes: list[str] = field(default_factory=lambda: ["audio"])  # the input's axes (motion: accX, accY, ...)
    output: str = "spectrogram"  # the first DSP block's output: spectrogram, or flat (frames x 1 features)
    version: int = 4  # the DSP blocks' implementationVersion
    raw: dict = field(
        default_factory=dict
    )  # sample id -> its raw data, values (steps, axes) at `frequency` (others: 404)

    @property
    def blocks(self) -> list[DspOutput]:
        """Every DSP block feeding the learn block, in the impulse's order (ids DSP_ID, DSP_ID + 1, ...)."""
        first = DspOutput(
            self.dsp_type, self.dsp_type.upper(), self.frames, self.columns, self.features, self.parameters, self.output
        )
        return [first, *self.more]


@dataclass
class Recorded:
    server: str
    method: str
    path: str
    headers: dict
    at: float = field(default_factory=time.monotonic)


@dataclass
class Emulator:
    export_zip: bytes
    model_zip: bytes | None  # the Keras model; None: a project without one (404)
    api_key: str = "ei_0123456789abcdef0123456789abcdef_test"
    classes: list[str] = field(default_factory=lambda: ["circle", "square", "triangle"])
    mode: str = "classification"
    learn_type: str = "keras-transfer-image"
    last_layer: str | None = None  # object detection: fomo, mobilenet-ssd, ...
    thresholds: list = field(default_factory=list)  # BlockThreshold objects of the learn block
    image: dict = field(default_factory=lambda: {"width": 64, "height": 64, "resizeMode": "fit-short"})
    channels: str = "RGB"
    audio: AudioProject | None = None  # a time-series impulse instead of the image one
    faults: Faults = field(default_factory=Faults)
    requests: list[Recorded] = field(default_factory=list)
    tflite: bytes | None = None  # the project's int8 TFLite model, offered in its downloads

    def __post_init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[int, dict] = {}
        self._next_job = 100
        self._export_created = datetime(2020, 1, 1, tzinfo=UTC)
        self.api = _Server(("127.0.0.1", 0), _handler(self, "api"))
        self.storage = _Server(("127.0.0.2", 0), _handler(self, "storage"))

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.api.server_port}"

    def __enter__(self) -> Emulator:
        for server in (self.api, self.storage):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.api, self.storage):
            server.shutdown()
            server.server_close()

    def _take(self, name: str) -> bool:
        """Consume one occurrence of a counted fault."""
        with self._lock:
            left = getattr(self.faults, name)
            if left == 0:
                return False
            if left > 0:
                setattr(self.faults, name, left - 1)
            return True

    # -- API responses (JSON shaped as the edgeimpulse-api models) ---------------------------

    def route(self, method: str, path: str, query: str = "") -> tuple[int, dict | bytes, dict]:
        p = f"/v1/api/{PROJECT_ID}"
        if method == "GET" and path == "/v1/api/projects":
            return 200, projects(), {}
        if method == "GET" and path == f"{p}/impulse":
            return 200, audio_impulse(self.audio) if self.audio else impulse(self.image, self.learn_type), {}
        if self.audio and method == "GET" and path.startswith((f"{p}/dsp", f"{p}/raw-data/")):
            return self._audio_route(path, query)
        if method == "GET" and path == f"{p}/dsp/{DSP_ID}":
            return 200, dsp_config(self.channels), {}
        if method == "GET" and path == f"{p}/training/keras/{LEARN_ID}/metadata":
            return 200, keras_metadata(self.classes, self.mode, self.last_layer, self.thresholds), {}
        if method == "GET" and path == f"{p}/learn-data/{LEARN_ID}/model/tflite-h5" and self.model_zip:
            return 200, self.model_zip, {"Content-Type": "application/zip"}
        if method == "GET" and path == f"{p}/learn-data/{LEARN_ID}/model/tflite-int8" and self.tflite:
            return 200, self.tflite, {"Content-Type": "application/octet-stream"}
        if method == "GET" and path == f"{p}/downloads":
            return 200, self._downloads(), {}
        if method == "POST" and path == f"{p}/jobs/export/original":
            return 200, self._start_job(), {}
        match = re.fullmatch(rf"{p}/jobs/(\d+)/(status|stdout)", path)
        if method == "GET" and match:
            job = self._jobs.get(int(match.group(1)))
            if job is None:
                return 404, {"success": False, "error": "Job not found"}, {}
            return 200, (self._job_status(job) if match.group(2) == "status" else job_logs(job)), {}
        if method == "GET" and path == f"{p}/export/get-url":
            return 200, self._export_url(), {}
        return 404, {"success": False, "error": f"no route {method} {path}"}, {}

    def _audio_route(self, path: str, query: str) -> tuple[int, dict | bytes, dict]:
        """The DSP blocks' output for training and testing (the same windows; the training samples'
        ids 10000 higher), and the samples' audio."""
        p, audio, npy = f"/v1/api/{PROJECT_ID}", self.audio, {"Content-Type": "application/octet-stream"}
        blocks = {DSP_ID + i: block for i, block in enumerate(audio.blocks)}
        data = re.fullmatch(rf"{p}/dsp-data/(\d+)/([xy])/(training|testing)", path)
        if data and int(data.group(1)) in blocks:
            return 200, blocks[int(data.group(1))].features if data.group(2) == "x" else audio.labels, npy
        meta = re.fullmatch(rf"{p}/dsp/(\d+)/metadata", path)
        if meta and int(meta.group(1)) in blocks:
            block = blocks[int(meta.group(1))]
            return 200, dsp_metadata(audio, block, 10000 if "category=training" in query else 0), {}
        sample = re.fullmatch(rf"{p}/raw-data/(\d+)", path)
        if sample and int(sample.group(1)) in audio.raw:
            return 200, raw_sample(int(sample.group(1)), audio.raw[int(sample.group(1))], audio), {}
        match = re.fullmatch(rf"{p}/raw-data/(\d+)/wav", path)
        if match and int(match.group(1)) in audio.wavs:
            return 200, audio.wavs[int(match.group(1))], {"Content-Type": "audio/wav"}
        return 404, {"success": False, "error": f"no route GET {path}"}, {}

    def _downloads(self) -> dict:
        """The project's downloads, as Studio's dashboard lists them (ProjectDownloadsResponse)."""
        offered = [
            ("tflite-h5", "Keras model (h5)", self.model_zip),
            ("tflite-int8", "TensorFlow Lite (int8 quantized)", self.tflite),
        ]
        downloads = [
            {
                "id": i,
                "name": name,
                "type": name,
                "size": f"{len(body)} bytes",
                "link": f"/v1/api/{PROJECT_ID}/learn-data/{LEARN_ID}/model/{i}",
            }
            for i, name, body in offered
            if body
        ]
        return {"success": True, "downloads": downloads}

    def _start_job(self) -> dict:
        with self._lock:
            job_id, self._next_job = self._next_job, self._next_job + 1
            self._jobs[job_id] = {"id": job_id, "created": datetime.now(UTC), "polls": 0}
        return {"success": True, "id": job_id}

    def _job_status(self, job: dict) -> dict:
        job["polls"] += 1
        body = {
            "id": job["id"],
            "category": "Exporting data",
            "categoryKey": "export-original",
            "key": f"export-{job['id']}",
            "created": job["created"].isoformat(),
            "jobNotificationUids": [],
        }
        if job["polls"] >= self.faults.polls_until_done:
            body["started"] = job["created"].isoformat()
            body["finished"] = datetime.now(UTC).isoformat()
            body["finishedSuccessful"] = not self.faults.job_fails
            if not self.faults.job_fails:
                self._export_created = datetime.now(UTC) + timedelta(milliseconds=1)
        return {"success": True, "job": body}

    def _export_url(self) -> dict:
        created = self._export_created
        if self._take("stale_export"):
            created = datetime(2020, 1, 1, tzinfo=UTC)
        url = f"http://127.0.0.2:{self.storage.server_port}/exports/{PROJECT_ID}.zip?X-Amz-Signature=abc123"
        return {"success": True, "hasExport": True, "created": created.isoformat(), "url": url}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that gave up (the timeout tests) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(emulator: Emulator, server: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _record(self) -> None:
            emulator.requests.append(Recorded(server, self.command, self.path, dict(self.headers.items())))

        def _send(self, status: int, body: dict | bytes, headers: dict | None = None, length: int | None = None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
            for key, value in (headers or {}).items():
                if key != "Content-Type":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data) if length is None else length))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            self._record()
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._api()

        def do_GET(self):
            self._record()
            if server == "storage":
                self._download()
            else:
                self._api()

        def _api(self):
            if self.headers.get("x-api-key") != emulator.api_key:
                return self._send(401, {"success": False, "error": "Invalid API key"})
            if self.command == "GET":
                if emulator._take("slow_count"):
                    time.sleep(emulator.faults.slow_seconds)
                if emulator._take("server_errors"):
                    return self._send(503, {"success": False, "error": "Service unavailable"})
                if emulator._take("rate_limited"):
                    return self._send(429, {"success": False, "error": "Too many requests"}, {"Retry-After": "1"})
            path, _, query = self.path.partition("?")
            self._send(*emulator.route(self.command, path, query))

        def _download(self):
            if not self.path.startswith(f"/exports/{PROJECT_ID}.zip") or "X-Amz-Signature" not in self.path:
                return self._send(403, b"signature does not match", {"Content-Type": "text/plain"})
            data = emulator.export_zip
            if emulator._take("truncated_downloads"):
                self._send(200, data[: len(data) // 2], {"Content-Type": "application/zip"}, length=len(data))
                self.close_connection = True
                return
            if emulator._take("corrupt_downloads"):
                data = bytes(len(data))
            self._send(200, data, {"Content-Type": "application/zip"})

    return Handler


# -- JSON bodies --------------------------------------------------------------------------------


def _now() -> str:
    return datetime(2024, 5, 1, tzinfo=UTC).isoformat()


def projects() -> dict:
    project = {
        "id": PROJECT_ID,
        "name": "shapes",
        "description": "Synthetic shapes",
        "created": _now(),
        "owner": "someone",
        "ownerIsDeveloperProfile": False,
        "collaborators": [],
        "labelingMethod": "single_label",
        "metadata": {},
        "isEnterpriseProject": False,
        "whitelabelId": None,
        "tier": "free",
        "hasPublicVersion": False,
        "isPublic": False,
        "allowsLivePublicAccess": False,
        "indPauseProcessingSamples": False,
        "publicProjectListed": False,
    }
    return {"success": True, "projects": [project]}


def _impulse(input_block: dict, dsp_blocks: list[dict], learn_blocks: list[dict]) -> dict:
    """GET /api/{projectId}/impulse around its blocks."""
    blocks = {"inputBlocks": [input_block], "dspBlocks": dsp_blocks, "learnBlocks": learn_blocks}
    impulse = {"id": IMPULSE_ID, "name": "Impulse #1", "type": "default", **blocks, "postProcessingBlocks": []}
    return {"success": True, "impulse": impulse}


def impulse(image: dict, learn_type: str = "keras-transfer-image") -> dict:
    return _impulse(
        {
            "id": 1,
            "type": "image",
            "name": "Image data",
            "title": "Image data",
            "imageWidth": image["width"],
            "imageHeight": image["height"],
            "resizeMode": image["resizeMode"],
            "resizeMethod": image.get("resizeMethod", "lanczos3"),
            "cropAnchor": image.get("cropAnchor", "middle-center"),
        },
        [
            {
                "id": DSP_ID,
                "type": "image",
                "name": "Image",
                "title": "Image",
                "axes": ["image"],
                "input": 1,
                "implementationVersion": 1,
            }
        ],
        [
            {"id": 7, "type": "anomaly", "name": "Anomaly", "title": "Anomaly detection", "dsp": [DSP_ID]},
            {
                "id": LEARN_ID,
                "type": learn_type,
                "name": "Transfer learning",
                "title": "Transfer learning",
                "dsp": [DSP_ID],
            },
        ],
    )


def audio_impulse(audio: AudioProject) -> dict:
    """A keyword-spotting impulse: time series, an audio DSP block (and others), a Keras classifier."""
    dsp = [
        {"id": DSP_ID + i, "type": block.dsp_type, "name": block.name, "title": block.dsp_type, "axes": audio.axes}
        | {"input": 1, "implementationVersion": audio.version}
        for i, block in enumerate(audio.blocks)
    ]
    window = {"windowSizeMs": audio.window_ms, "windowIncreaseMs": audio.increase_ms, "frequencyHz": audio.frequency}
    source = {"id": 1, "type": "time-series", "name": "Time series", "title": "Time series data", "axes": audio.axes}
    learn = {"id": LEARN_ID, "type": "keras", "name": "Classifier", "title": "Classification"}
    return _impulse(source | window | {"padZeros": True}, dsp, [learn | {"dsp": [block["id"] for block in dsp]}])


def dsp_metadata(audio: AudioProject, block: DspOutput, id_offset: int = 0) -> dict:
    """GET /api/{projectId}/dsp/{dspId}/metadata: the rows' samples, the windows, the output's shape."""
    windows = sum(count for _, count in audio.samples)
    size = block.frames * block.columns
    shape = {"width": block.frames, "height": block.columns} if block.output == "spectrogram" else {"width": size}
    return {
        "success": True,
        "created": _now(),
        "generated": True,
        "dspConfig": {name: str(value) for name, value in block.parameters.items()},
        "labels": [],
        "windowCount": windows,
        "featureCount": size,
        "includedSamples": [{"id": sample + id_offset, "windowCount": count} for sample, count in audio.samples],
        "windowSizeMs": audio.window_ms,
        "windowIncreaseMs": audio.increase_ms,
        "padZeros": True,
        "frequency": audio.frequency,
        "outputConfig": {"type": block.output, "shape": shape},
    }


def raw_sample(sample_id: int, values, audio: AudioProject) -> dict:
    """GET /api/{projectId}/raw-data/{sampleId}: a time-series sample and its values (GetSampleResponse)."""
    interval = 1000 / audio.frequency
    sensors = [{"name": axis, "units": "m/s2"} for axis in audio.axes]
    sample = {
        "id": sample_id,
        "filename": f"sample-{sample_id}.cbor",
        "signatureValidate": False,
        "created": _now(),
        "lastModified": _now(),
        "category": "testing",
        "coldstorageFilename": f"sample-{sample_id}.cbor",
        "label": "unknown",
        "intervalMs": interval,
        "frequency": audio.frequency,
        "originalIntervalMs": interval,
        "originalFrequency": audio.frequency,
        "deviceType": "emulator",
        "sensors": sensors,
        "valuesCount": len(values),
        "added": _now(),
        "boundingBoxes": [],
        "boundingBoxesType": "object_detection",
        "chartType": "chart",
        "isDisabled": False,
        "isProcessing": False,
        "processingError": False,
        "isCropped": False,
        "projectId": PROJECT_ID,
        "sha256Hash": "0" * 64,
        "datastreams": [],
    }
    payload = {"device_type": "emulator", "sensors": sensors, "values": [list(map(float, row)) for row in values]}
    payload |= {"intervalMs": interval, "frequencyHz": audio.frequency}
    return {
        "success": True,
        "sample": sample,
        "payload": payload,
        "totalPayloadLength": len(values),
        "datastreamPayloads": [],
    }


def dsp_config(channels: str) -> dict:
    item = {
        "name": "Color depth",
        "value": channels,
        "defaultValue": "RGB",
        "type": "select",
        "param": "channels",
        "readonly": False,
        "shouldShow": True,
        "required": True,
        "showClickToSet": False,
    }
    return {
        "success": True,
        "dsp": {
            "id": DSP_ID,
            "name": "Image",
            "windowLength": 0,
            "type": "image",
            "classes": [],
            "features": {"generated": True},
            "expectedWindowCount": 1,
            "inputAxes": ["image"],
            "canCalculateFeatureImportance": False,
            "calculateFeatureImportance": False,
            "canNormalizeData": False,
            "normalizeData": "none",
        },
        "config": [{"group": "Parameters", "items": [item]}],
    }


def keras_metadata(classes: list[str], mode: str, last_layer: str | None = None, thresholds=()) -> dict:
    extra = {"objectDetectionLastLayer": last_layer} if last_layer else {}
    return extra | {
        "success": True,
        "created": _now(),
        "layers": [],
        "classNames": classes,
        "labels": classes,
        "availableModelTypes": ["float32", "int8"],
        "recommendedModelType": "float32",
        "modelValidationMetrics": [],
        "hasTrainedModel": True,
        "mode": mode,
        "imageInputScaling": "0..1",
        "thresholds": list(thresholds),
    }


def job_logs(job: dict) -> dict:
    lines = ["Exporting data...", "Error: storage quota exceeded while writing testing/42.jpg"]
    return {
        "success": True,
        "stdout": [{"created": job["created"].isoformat(), "data": line} for line in lines],
        "totalCount": len(lines),
    }
