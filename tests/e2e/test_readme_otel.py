"""The README's Python OTel snippet, run as it is written, against a real gateway.

The code block and the environment variables are taken from README.md (only the endpoint's host is
the test gateway's), so a snippet that stops working, or a variable the README drops, fails here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## OTLP receiver"


def _blocks(lang: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def _env_block() -> dict[str, str]:
    (block,) = [b for b in _blocks("sh") if "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" in b]
    return dict(line.split("#")[0].strip().split("=", 1) for line in block.splitlines() if line.strip())


def test_the_readme_names_the_python_traps():
    text = README.read_text()
    section = text[text.index(SECTION):]
    assert "only under `opentelemetry-instrument`" in section
    assert "no `http/json` protocol" in section
    assert "force_flush()" in _blocks("python")[0]


def test_the_readme_python_snippet_exports_to_the_gateway(gateway_factory):
    gateway = gateway_factory()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(_env_block())
    assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].startswith("http://gateway:4318/")
    env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].replace(
        "http://gateway:4318", gateway.otlp_url)
    (snippet,) = [b for b in _blocks("python") if "MeterProvider" in b]
    # two invocations of the handler, in two processes (a function's cold starts)
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", snippet + "\nassert handler(None, None)['status'] == 200\n"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    samples = gateway.samples()
    want = {"job": "shop/checkout", "otel_scope_name": "checkout", "route": "/pay"}
    found = {labels: v for (name, labels), v in samples.items() if name == "requests_total"}
    assert any(want.items() <= dict(labels).items() and v == 2 for labels, v in found.items()), found
