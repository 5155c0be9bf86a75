"""The Docker image keeps its state in a named volume across containers (Dockerfile + configs/docker.yaml).

For real: builds the image from the Dockerfile, runs it with ``-v <volume>:<storage.directory>`` and
the push port published on 127.0.0.1 only, pushes a counter, ``docker kill``s the container (SIGKILL),
starts a new container on the same volume and scrapes the sum; then waits for the HEALTHCHECK to
say healthy, checks that ``docker stop`` (SIGTERM) exits 0, and that a third container reads the
snapshot that stop wrote. Also: the image's VOLUME is configs/docker.yaml's storage.directory and
the gateway runs as uid 10001 (the Dockerfile's USER), owner of that directory, mode 0700.

Skipped, saying why, when no Docker daemon answers ``docker info`` or no base image can be had.
Base image, first that works:
- ``OTELGRAVEL_DOCKER_BASE`` (an image the daemon has or can pull), used as it is
- ``python:3.11-slim`` (the Dockerfile's default), local or pulled
- a stand-in built here, where Docker Hub is unreachable: ``debootstrap --variant=minbase bookworm``
  (root and debootstrap needed, the mirror from /etc/apt/sources.list*), imported, plus Debian's
  python3 (3.11) in a venv first on PATH, the host's CA bundle and PIP_CERT so that pip in the build
  reaches the package index as the host does. The Dockerfile gets it as ``--build-arg BASE=...``.
The base images are left in the daemon as a cache (making the stand-in took about 60 s once on a
2-core machine); the product image, containers and volume are removed. Marked ``docker``:
``-m 'not docker'`` leaves it out. Measured: about 27 s with the base cached (image build 12 s, the
rest mostly waiting for the first healthcheck), about 90 s from nothing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families as parse_text

REPO = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker")
STATE_DIR = yaml.safe_load((REPO / "configs/docker.yaml").read_text())[
    "processors"]["gravel"]["storage"]["directory"]
UID = "10001"  # the Dockerfile's USER and the owner of the state directory
STAND_IN = "otelgravel-test/python:3.11-slim"
ROOTFS = "otelgravel-test/bookworm-minbase"
RUN_ID = uuid.uuid4().hex[:10]


def docker(*args, timeout=120, check=True, input=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _daemon_problem() -> str | None:
    if DOCKER is None:
        return "no docker client on PATH"
    try:
        proc = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info did not answer in 20 s"
    if proc.returncode != 0 or not proc.stdout.strip():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return "no Docker daemon reachable: " + (lines[-1] if lines else f"rc={proc.returncode}")
    return None


DAEMON_PROBLEM = _daemon_problem()
pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(DAEMON_PROBLEM is not None, reason=DAEMON_PROBLEM or "")]


def _have_image(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, timeout=30).returncode == 0


def _debian_mirror() -> str:
    for path in sorted(Path("/etc/apt").glob("sources.list*")) + \
            sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = match.group(1).rstrip("/")
            if uri.startswith("http") and uri.endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


STAND_IN_DOCKERFILE = """\
# python:3.11-slim stand-in: Debian bookworm's python3 (3.11) in a venv first on PATH, so that
# python, pip and pip-installed scripts resolve as in the official image (useradd is in minbase)
FROM {rootfs}
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
       python3 python3-venv ca-certificates \\
    && rm -rf /var/lib/apt/lists/* \\
    && python3 -m venv /usr/local/py311
# the host's CA bundle: pip in a build reaches the package index the way the host does
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/py311/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt{index}
CMD ["python3"]
"""


def _host_index_url() -> str | None:
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        proc = subprocess.run(["python3", "-m", "pip", "config", "get", "global.index-url"],
                              capture_output=True, text=True)
        url = proc.stdout.strip() if proc.returncode == 0 else None
    return url if url and url.startswith(("http://", "https://")) else None


def _build_stand_in() -> str | None:
    """Build STAND_IN; None when done, else why it cannot be made."""
    if not _have_image(ROOTFS):
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None or os.geteuid() != 0:
            return "python:3.11-slim cannot be pulled and no stand-in can be made " \
                   "(needs root and debootstrap: apt-get install debootstrap)"
        with tempfile.TemporaryDirectory(prefix="otelgravel-rootfs-") as rootfs:
            proc = subprocess.run([debootstrap, "--variant=minbase", "bookworm", rootfs,
                                   _debian_mirror()], capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                return "debootstrap failed: " + (proc.stderr or proc.stdout).strip()[-500:]
            tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run([DOCKER, "import", "-", ROOTFS], stdin=tar.stdout,
                                 capture_output=True, text=True, timeout=600)
            tar.stdout.close()
            tar.wait()
            if imp.returncode != 0 or tar.returncode != 0:
                return "docker import of the bookworm rootfs failed: " + imp.stderr.strip()[-500:]
    with tempfile.TemporaryDirectory(prefix="otelgravel-base-") as context:
        cafile = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.isfile(cafile):
            return f"no CA bundle on the host ({cafile}) for pip in the stand-in"
        shutil.copyfile(cafile, Path(context) / "ca-certificates.crt")
        index = _host_index_url()
        (Path(context) / "Dockerfile").write_text(STAND_IN_DOCKERFILE.format(
            rootfs=ROOTFS, index=f" \\\n    PIP_INDEX_URL={index}" if index else ""))
        proc = docker("build", "--network", "host", "-t", STAND_IN, context,
                      timeout=900, check=False)
        if proc.returncode != 0:
            return "building the python:3.11-slim stand-in failed: " + \
                (proc.stderr or proc.stdout).strip()[-800:]
    return None


@pytest.fixture(scope="module")
def base_image() -> str:
    wanted = os.environ.get("OTELGRAVEL_DOCKER_BASE")
    if wanted:
        if not _have_image(wanted) and docker("pull", wanted, check=False, timeout=600).returncode:
            pytest.skip(f"OTELGRAVEL_DOCKER_BASE={wanted}: not in the daemon and cannot be pulled")
        return wanted
    if _have_image("python:3.11-slim"):
        return "python:3.11-slim"
    pull = docker("pull", "python:3.11-slim", check=False, timeout=600)
    if pull.returncode == 0:
        return "python:3.11-slim"
    if _have_image(STAND_IN):
        return STAND_IN
    problem = _build_stand_in()
    if problem:
        pytest.skip(f"{problem} (docker pull python:3.11-slim: "
                    f"{pull.stderr.strip().splitlines()[-1] if pull.stderr.strip() else pull.returncode})")
    return STAND_IN


@pytest.fixture(scope="module")
def image(base_image):
    tag = f"otelgravel-test:{RUN_ID}"
    docker("build", "--network", "host", "--build-arg", f"BASE={base_image}", "-t", tag,
           str(REPO), timeout=900)
    yield tag
    docker("image", "rm", "-f", tag, check=False)


class Containers:
    """Containers and the volume of one test, removed at the end whatever happened."""

    def __init__(self, image: str):
        self.image = image
        self.volume = f"otelgravel-state-test-{RUN_ID}"
        self.ids: list[str] = []
        docker("volume", "create", self.volume)

    def start(self) -> tuple[str, str]:
        """(container id, base url of its push/scrape port) once /-/ready answers 200."""
        cid = docker("run", "-d", "-v", f"{self.volume}:{STATE_DIR}",
                     "-p", "127.0.0.1::4278", self.image).stdout.strip()
        self.ids.append(cid)
        port = docker("port", cid, "4278/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http("GET", url + "/-/ready")[0] == 200:
                    return cid, url
            except OSError:
                pass
            state = inspect(cid)["State"]
            if not state["Running"] or time.monotonic() > deadline:
                raise AssertionError(f"container not ready (state {state['Status']}, exit "
                                     f"{state['ExitCode']}):\n{logs(cid)}")
            time.sleep(0.2)

    def cleanup(self):
        for cid in self.ids:
            docker("rm", "-f", cid, check=False)
        docker("volume", "rm", "-f", self.volume, check=False)


def http(method, url, body=None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def inspect(cid) -> dict:
    return json.loads(docker("inspect", cid).stdout)[0]


def logs(cid) -> str:
    proc = docker("logs", cid, check=False)
    return (proc.stdout + proc.stderr)[-4000:]


def counter(url) -> float | None:
    status, text = http("GET", url + "/metrics")
    assert status == 200, text
    for family in parse_text(text):
        for sample in family.samples:
            if sample.name == "c_total" and sample.labels.get("job") == "j":
                return sample.value
    return None


def push(url, times):
    for _ in range(times):
        status, body = http("POST", url + "/metrics/job/j", b"c_total 1\n")
        assert status == 200, (status, body)


def test_state_survives_kill_and_stop_in_a_named_volume(image):
    config = inspect(image)["Config"]
    assert STATE_DIR in (config.get("Volumes") or {}), \
        f"the image's VOLUME {config.get('Volumes')} is not storage.directory {STATE_DIR}"

    box = Containers(image)
    try:
        first, url = box.start()
        status = docker("exec", first, "sh", "-c",
                        f"awk '/^Uid:/ {{print $2}}' /proc/1/status; stat -c '%u %a' {STATE_DIR}")
        assert status.stdout.split() == [UID, UID, "700"], \
            f"gateway uid, state directory owner and mode: {status.stdout!r}"
        push(url, 5)
        assert counter(url) == 5
        docker("kill", first)  # SIGKILL right after the last answer: each push is in the log
        docker("wait", first, timeout=60)
        assert inspect(first)["State"]["ExitCode"] == 137

        second, url = box.start()
        assert counter(url) == 5, f"a new container on the volume lost the pushes:\n{logs(second)}"
        push(url, 2)
        assert counter(url) == 7

        deadline = time.monotonic() + 90  # HEALTHCHECK: 10 s interval, 5 s start period
        while (health := inspect(second)["State"]["Health"]["Status"]) != "healthy":
            assert health != "unhealthy" and time.monotonic() < deadline, \
                f"healthcheck {health}:\n{json.dumps(inspect(second)['State']['Health'])[-2000:]}"
            time.sleep(1)

        started = time.monotonic()
        docker("stop", "--time", "30", second, timeout=60)  # SIGTERM, SIGKILL after 30 s
        took = time.monotonic() - started
        state = inspect(second)["State"]
        assert state["ExitCode"] == 0, f"docker stop: exit {state['ExitCode']}:\n{logs(second)}"
        assert took < 25, f"docker stop took {took:.1f} s"
        assert "snapshot written" in logs(second)

        third, url = box.start()
        assert counter(url) == 7, f"the snapshot written at stop was not read:\n{logs(third)}"
        assert "snapshot_series=1" in logs(third), logs(third)
    finally:
        box.cleanup()
