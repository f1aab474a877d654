# The Grad-CAM deployment block, as Edge Impulse Studio runs it:
#   docker run --rm -v <dir>:/home <image> --metadata /home/input/deployment-metadata.json [parameters...]
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# Not under /home: Studio mounts its network storage there.
WORKDIR /app

COPY requirements.txt requirements-nodeps.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt

COPY main.py ./
COPY gradcam/ gradcam/

ENTRYPOINT ["python3", "-u", "main.py"]
