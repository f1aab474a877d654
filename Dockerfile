# The Grad-CAM deployment block, as Edge Impulse Studio runs it:
#   docker run --rm -v <dir>:/home <image> --metadata /home/input/deployment-metadata.json [parameters...]
# Two stages: the first installs into a virtual environment and drops what only building needs
# (TensorFlow's C++ headers, libclang, pip, the static symbol tables of TensorFlow's two big
# libraries: 200 MB); the second is the base image plus that environment.
FROM python:3.11-slim-bookworm AS build

# binutils (strip) is used in this stage only; Debian's bookworm version is the one wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python3 -m venv /opt/venv
COPY requirements.txt requirements-nodeps.txt /src/
RUN pip install --no-cache-dir -r /src/requirements.txt \
    && pip install --no-cache-dir --no-deps -r /src/requirements-nodeps.txt
COPY pyproject.toml README.md /src/
COPY gradcam/ /src/gradcam/
# The block itself, with its `gradcam-block` command; its dependencies are the pinned ones above.
RUN pip install --no-cache-dir --no-deps /src \
    && site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "$site/tensorflow/include" "$site/clang" "$site"/libclang-* \
    && strip --strip-unneeded "$site"/tensorflow/libtensorflow_cc.so.2 "$site"/tensorflow/libtensorflow_framework.so.2 \
    && pip uninstall --yes --quiet pip setuptools

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/venv/bin:$PATH

COPY --from=build /opt/venv /opt/venv
# Not under /home: Studio mounts its network storage there.
WORKDIR /app
COPY main.py ./

ENTRYPOINT ["python3", "-u", "main.py"]
