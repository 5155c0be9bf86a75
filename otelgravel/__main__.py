"""The otelgravel command: otelgravel [--config FILE] [--set dotted.key=value ...]."""
from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time

from . import __version__
from .config import load_config
from .errors import ConfigError, GravelError


class LogfmtFormatter(logging.Formatter):
    """One line per event: ``ts=... level=info msg="listening" endpoint=127.0.0.1:4278``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"ts={ts}.{int(record.msecs):03d}Z", f"level={record.levelname.lower()}",
                 f"msg={_quote(record.getMessage())}"]
        for key, value in getattr(record, "fields", {}).items():
            parts.append(f"{key}={_quote(str(value))}")
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


# Every character that could end a line or hide in one: C0/C1 controls and DEL, the Unicode line
# and paragraph separators, and the format characters that reorder text (bidi overrides). A client
# controls paths and label values that reach log fields, so none of these is written raw.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\"]')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    c = match.group()
    return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def _quote(text: str) -> str:
    """A logfmt value: bare when it is plain, else quoted with every unsafe character escaped,
    so that a log line is always one line whatever a client sent."""
    if text and all(c.isalnum() or c in "._:/-,@[]" for c in text):
        return text
    return '"' + _UNSAFE.sub(_escape, text) + '"'


# plain text: argparse prints it as it is (the module docstring is for readers of the code)
DESCRIPTION = ("An aggregating metrics gateway: Pushgateway-compatible pushes and OTLP/HTTP in, "
               "one Prometheus scrape out. With no options it runs the embedded default config "
               "(push and scrape on localhost:4278, OTLP on localhost:4318).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otelgravel", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"otelgravel {__version__}")
    parser.add_argument("--config", metavar="FILE", help="YAML config (default: the embedded one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. receivers.pushgateway.admin_api=true")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.set)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"otelgravel: invalid config: {problem}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    level = {"warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    for name, floor in (("otelgravel", level), ("aiohttp", "WARNING"), ("asyncio", "WARNING")):
        logger = logging.getLogger(name)  # aiohttp's and asyncio's errors in the same one-line form
        logger.addHandler(handler)
        logger.setLevel(max(logging.getLevelName(level), logging.getLevelName(floor)))
        logger.propagate = False

    from .service import run
    loop_factory = None
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run(config))
    except (OSError, GravelError) as exc:
        print(f"otelgravel: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
