"""Installs what the benchmark needs and is missing: apt packages (the Pushgateway, wrk) and pip ones."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

from common import log

APT_PACKAGES = ("prometheus-pushgateway", "wrk")
PY_PACKAGES = {  # module to import -> pip distribution: what the bench itself imports
    "aiohttp": "aiohttp",
    "uvloop": "uvloop",
    "google.protobuf": "protobuf",
    "opentelemetry.proto": "opentelemetry-proto",
    "matplotlib": "matplotlib",
}


def package_requirements_missing() -> list[str]:
    """The requirements in pyproject.toml that this Python lacks: the bench runs the checkout
    (``python -m otelgravel`` in REPO_DIR), so what it needs is the package's dependencies."""
    import importlib.metadata
    import re
    import tomllib

    from common import REPO_DIR

    deps = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = []
    for req in deps:
        name, _, marker = req.partition(";")
        if marker.strip():
            try:
                from packaging.markers import Marker
                if not Marker(marker.strip()).evaluate():
                    continue
            except ImportError:
                pass
        try:
            importlib.metadata.version(re.split(r"[<>=!~\[ ]", name.strip(), maxsplit=1)[0])
        except importlib.metadata.PackageNotFoundError:
            missing.append(req.strip())
    return missing



def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


def ensure_dependencies(pushgateway_bin: str) -> None:
    missing_bins = [b for b in (pushgateway_bin, "wrk") if shutil.which(b) is None]
    if missing_bins:
        cmd = "apt-get update && apt-get install -y " + " ".join(APT_PACKAGES)
        if os.geteuid() != 0:
            if shutil.which("sudo") is None:
                sys.exit(f"missing {missing_bins}; run as root: {cmd}")
            cmd = "sudo sh -c " + json.dumps(cmd)
        log(f"installing {missing_bins}: {cmd}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["sh", "-c", cmd], check=True, timeout=1200, env=env)
        still = [b for b in (pushgateway_bin, "wrk") if shutil.which(b) is None]
        if still:
            sys.exit(f"still missing after apt-get: {still}")
    missing_py = [dist for mod, dist in PY_PACKAGES.items() if _module_missing(mod)]
    missing_py += [r for r in package_requirements_missing() if r.split(";")[0] not in missing_py]
    if missing_py:
        log(f"pip installing {missing_py}")
        subprocess.run([sys.executable, "-m", "pip", "install", *missing_py], check=True, timeout=1200)
        importlib.invalidate_caches()

