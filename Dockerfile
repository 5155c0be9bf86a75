# otelgravel: Pushgateway-compatible pushes and OTLP/HTTP in, one Prometheus scrape out.
#   docker build -t otelgravel .
#   docker run -p 4278:4278 -p 4318:4318 -v otelgravel-state:/var/lib/otelgravel otelgravel
# Config: configs/docker.yaml (all endpoints on 0.0.0.0), at /etc/otelgravel/config.yaml in the image.
# BASE: another image with the same layout (python, pip and their scripts on PATH, useradd),
# e.g. a local stand-in where Docker Hub is unreachable: docker build --build-arg BASE=... .
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY otelgravel ./otelgravel
# gcc only for the install: pip builds the log's frame accelerator with it (optional: where it
# cannot, e.g. a base without Python's headers, the frames are built in Python), then it goes
RUN (apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
        || echo "no C compiler: the log's frames are built in Python") \
    && pip install ".[fast]" \
    && (apt-get purge -y -qq --auto-remove gcc libc6-dev >/dev/null 2>&1 || true) \
    && rm -rf /var/lib/apt/lists/* /src/build /src/*.egg-info \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin otelgravel \
    && install -d -m 0700 -o 10001 -g 10001 /var/lib/otelgravel

COPY configs/docker.yaml /etc/otelgravel/config.yaml

WORKDIR /
USER 10001:10001
# The state (log + snapshot, storage.directory): a named volume keeps it across containers.
# A new named volume copies this directory's owner and mode (10001, 0700).
VOLUME /var/lib/otelgravel

# 4278: push API and /metrics scrape (one server); 4318: OTLP/HTTP
EXPOSE 4278 4318 8888

# slim has no curl: ask /-/ready with the interpreter that is already there
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4278/-/ready', timeout=2).status == 200 else 1)"]

# otelgravel finishes in-flight requests on SIGTERM, writes its last snapshot and exits 0
STOPSIGNAL SIGTERM
CMD ["otelgravel", "--config", "/etc/otelgravel/config.yaml"]
