"""otelgravel: an aggregating metrics gateway (Pushgateway API and OTLP in, one Prometheus scrape out).

The version lives here, not only in package metadata, so that ``python -m otelgravel --version``
works from a plain checkout; pyproject.toml reads it (setuptools' dynamic version).
"""

__version__ = "0.1.0"
