"""bench/deps.py decides what a fresh machine must pip install: the package's own dependencies
(PyYAML included), read from pyproject.toml, since the bench runs ``python -m otelgravel`` from the
checkout. Checked in a bare venv (nothing installed) and in this environment (everything installed)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = ("import json, sys; sys.path.insert(0, 'bench'); import deps; "
         "print(json.dumps(deps.package_requirements_missing()))")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def _missing(python: str) -> list[str]:
    result = subprocess.run([python, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_bare_python_is_told_to_install_every_package_dependency(tmp_path):
    venv.EnvBuilder(with_pip=False).create(tmp_path / "venv")
    missing = _missing(str(tmp_path / "venv" / "bin" / "python"))
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _names(missing) == _names(declared)  # Linux CPython: uvloop's marker holds too
    assert "pyyaml" in _names(missing)


def test_an_environment_with_the_dependencies_installs_nothing_more():
    assert _missing(sys.executable) == []
