"""Load, override and validate the YAML config; every problem is reported with its key path.

Like the Collector: unknown keys are errors, all problems are collected and reported together
(``processors::gravel::expire_after: must be a duration >= 0 (got "-1s")``), and ``--set
a.b.c=value`` overrides one key with a YAML-parsed value.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml

from .auth.config import TlsConfig, check_auth, check_extensions, check_shared_tls, check_tls
from .clearmode import parse_clear_mode, parse_duration
from .errors import ClearModeError, ConfigError
from .model import ClearMode

RECEIVERS = ("pushgateway", "otlp")
PROCESSORS = ("gravel",)
EXPORTERS = ("prometheus",)
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 1 << 20,
               "GB": 10**9, "GiB": 1 << 30}
_LOG_LEVELS = ("debug", "info", "warn", "error")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class HttpLimits:
    """One HTTP endpoint's server limits, in the Collector's confighttp spelling (0 = off)."""
    read_header_timeout: float = 10.0
    read_timeout: float = 60.0     # a request's first byte to the end of its body
    idle_timeout: float = 60.0     # a kept-alive connection with no request
    max_connections: int = 10_000  # more are closed at accept, counted and logged


HTTP_LIMIT_KEYS = ("read_header_timeout", "read_timeout", "idle_timeout", "max_connections")


@dataclass
class PushgatewayConfig:
    endpoint: Endpoint
    admin_api: bool = False
    max_body_size: int = 16 << 20
    limits: HttpLimits = HttpLimits()
    tls: TlsConfig | None = None
    auth: str | None = None  # the authenticator's name (an entry of Config.extensions)


@dataclass
class OtlpConfig:
    endpoint: Endpoint
    max_body_size: int = 16 << 20
    keep_instance: bool = False
    source_ttl: float = 3600.0
    max_sources: int = 100_000
    limits: HttpLimits = HttpLimits()
    tls: TlsConfig | None = None
    auth: str | None = None
    utf8_names: bool = False  # keep OTel names as they are (dots) instead of legacy names


@dataclass
class GravelConfig:
    expire_after: float = 0.0
    max_series: int = 1_000_000
    max_groups: int | None = None  # None: max_series alone bounds the groups (2 series each)
    rules: list[tuple[str, ClearMode]] = field(default_factory=list)
    storage: "StorageConfig" = field(default_factory=lambda: StorageConfig())
    max_idempotency_keys: int = 100_000   # Idempotency-Key values remembered (state/keys.py)
    idempotency_key_ttl: float = 3600.0   # in record time


@dataclass
class RedisConfig:
    """``processors.gravel.storage.redis`` (SPEC 9): the replicas' shared state."""
    addresses: list[str]
    username: str = ""
    password: str = ""
    ca_file: str = ""
    key_prefix: str = "otelgravel"
    wait_replicas: int = 0
    wait_timeout: float = 0.5


@dataclass
class StorageConfig:
    directory: str = ""          # "": memory only
    sync: str = "interval"       # always | interval | never
    sync_interval: float = 1.0
    snapshot_interval: float = 300.0
    snapshot_log_size: int = 64 << 20  # a snapshot is due sooner when the log reaches it; 0: off
    redis: RedisConfig | None = None   # the replicas' shared state (instead of a directory)


@dataclass
class PrometheusConfig:
    endpoint: Endpoint
    limits: HttpLimits | None = None  # None: the defaults, or those of the receiver it shares with
    tls: TlsConfig | None = None
    auth: str | None = None


@dataclass
class Config:
    pushgateway: PushgatewayConfig | None
    otlp: OtlpConfig | None
    gravel: GravelConfig
    prometheus: PrometheusConfig
    log_level: str = "info"
    telemetry_address: Endpoint | None = None  # service::telemetry::metrics::address; None: off
    document: dict = field(default_factory=dict)  # the document it was built from (status API)
    extensions: dict = field(default_factory=dict)  # the running ones, by name (auth/config.py)


def default_document() -> dict:
    text = resources.files("otelgravel").joinpath("default_config.yaml").read_text()
    return yaml.safe_load(text)


def load_document(path: str | None) -> dict:
    if path is None:
        return default_document()
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping")
    return doc


def apply_sets(doc: dict, sets: list[str]) -> dict:
    """``--set receivers.pushgateway.admin_api=true`` (or ``::`` as the separator).

    The value is read as YAML (``true``, ``2s``, ``[a, b]``), or taken as text when it is not YAML.
    """
    doc = copy.deepcopy(doc)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        parts = key.split("::") if "::" in key else key.split(".")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. "[::1]:4278"): the text as it is
        node = doc
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'::'.join(parts[:i + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return doc


class _Checker:
    """Collects problems with their key paths instead of stopping at the first."""

    def __init__(self):
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, node, path: str, allowed: tuple[str, ...]) -> dict:
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(path, f"must be a mapping (got {node!r})")
            return {}
        for key in node:
            if key not in allowed:
                self.fail(f"{path}::{key}" if path else str(key),
                          f"unknown key (expected one of: {', '.join(allowed)})")
        return node

    def endpoint(self, value, path: str) -> Endpoint | None:
        text = str(value) if isinstance(value, (str, int)) else None
        match = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*):(\d{1,5})", text or "")
        if match is None or int(match.group(2)) > 65535:
            self.fail(path, f'must be host:port (got "{value}")')
            return None
        host = match.group(1).strip("[]") or "0.0.0.0"
        return Endpoint(host, int(match.group(2)))

    def boolean(self, value, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, f'must be true or false (got "{value}")')
            return default
        return value

    def duration(self, value, path: str, default: float) -> float:
        if value is None:
            return default
        try:
            seconds = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else parse_duration(str(value))
        except ValueError:
            seconds = -1.0
        if seconds < 0:
            self.fail(path, f'must be a duration >= 0 such as 0s, 30s, 5m, 1h30m (got "{value}")')
            return default
        return seconds

    def positive_int(self, value, path: str, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(path, f'must be a whole number > 0 (got "{value}")')
            return default
        return value

    def size(self, value, path: str, default: int) -> int:
        if value is None:
            return default
        match = _SIZE.fullmatch(str(value).strip()) if not isinstance(value, bool) else None
        if match is None or int(match.group(1)) <= 0:
            self.fail(path, f'must be a size in bytes > 0 such as 1048576 or 16MiB (got "{value}")')
            return default
        return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def build_config(doc: dict) -> Config:
    """Validate a config document; raises ConfigError listing every problem."""
    c = _Checker()
    top = c.mapping(doc, "", ("extensions", "receivers", "processors", "exporters", "service"))
    receivers = c.mapping(top.get("receivers"), "receivers", RECEIVERS)
    processors = c.mapping(top.get("processors"), "processors", PROCESSORS)
    exporters = c.mapping(top.get("exporters"), "exporters", EXPORTERS)
    service = c.mapping(top.get("service"), "service", ("extensions", "pipelines", "telemetry"))
    extensions = check_extensions(c, top.get("extensions"), service.get("extensions"))
    pipelines = c.mapping(service.get("pipelines"), "service::pipelines", ("metrics",))
    pipeline = c.mapping(pipelines.get("metrics"), "service::pipelines::metrics",
                         ("receivers", "processors", "exporters"))
    if "metrics" not in pipelines:
        c.fail("service::pipelines::metrics", "is required")

    used: dict[str, list[str]] = {}
    for kind, configured in (("receivers", receivers), ("processors", processors),
                             ("exporters", exporters)):
        path = f"service::pipelines::metrics::{kind}"
        names = pipeline.get(kind, [])
        if not isinstance(names, list):
            c.fail(path, f"must be a list (got {names!r})")
            names = []
        for name in names:
            if name not in configured:
                c.fail(path, f'references {kind[:-1]} "{name}" which is not configured')
        used[kind] = [n for n in names if n in configured]
    if not used["receivers"] and "metrics" in pipelines:
        c.fail("service::pipelines::metrics::receivers", "must name at least one receiver")
    if not used["exporters"] and "metrics" in pipelines:
        c.fail("service::pipelines::metrics::exporters", "must name the prometheus exporter")

    pushgateway = None
    if "pushgateway" in used["receivers"]:
        node = c.mapping(receivers["pushgateway"], "receivers::pushgateway",
                         ("endpoint", "admin_api", "max_body_size", "tls", "auth") + HTTP_LIMIT_KEYS)
        endpoint = c.endpoint(node.get("endpoint", "localhost:4278"), "receivers::pushgateway::endpoint")
        pushgateway = PushgatewayConfig(
            endpoint,
            c.boolean(node.get("admin_api"), "receivers::pushgateway::admin_api", False),
            c.size(node.get("max_body_size"), "receivers::pushgateway::max_body_size", 16 << 20),
            _http_limits(c, node, "receivers::pushgateway"),
            check_tls(c, node.get("tls"), "receivers::pushgateway::tls"),
            check_auth(c, node.get("auth"), "receivers::pushgateway::auth", extensions))

    otlp = None
    if "otlp" in used["receivers"]:
        node = c.mapping(receivers["otlp"], "receivers::otlp",
                         ("protocols", "keep_instance", "source_ttl", "max_sources",
                          "utf8_names"))
        protocols = c.mapping(node.get("protocols"), "receivers::otlp::protocols", ("http",))
        http = c.mapping(protocols.get("http"), "receivers::otlp::protocols::http",
                         ("endpoint", "max_body_size", "tls", "auth") + HTTP_LIMIT_KEYS)
        otlp = OtlpConfig(
            c.endpoint(http.get("endpoint", "localhost:4318"), "receivers::otlp::protocols::http::endpoint"),
            c.size(http.get("max_body_size"), "receivers::otlp::protocols::http::max_body_size", 16 << 20),
            c.boolean(node.get("keep_instance"), "receivers::otlp::keep_instance", False),
            c.duration(node.get("source_ttl"), "receivers::otlp::source_ttl", 3600.0),
            c.positive_int(node.get("max_sources"), "receivers::otlp::max_sources", 100_000),
            _http_limits(c, http, "receivers::otlp::protocols::http"),
            check_tls(c, http.get("tls"), "receivers::otlp::protocols::http::tls"),
            check_auth(c, http.get("auth"), "receivers::otlp::protocols::http::auth", extensions),
            c.boolean(node.get("utf8_names"), "receivers::otlp::utf8_names", False))

    node = c.mapping(processors.get("gravel"), "processors::gravel",
                     ("expire_after", "max_series", "max_groups", "rules", "storage", "persistence_file",
                      "persistence_interval", "max_idempotency_keys", "idempotency_key_ttl"))
    for old in ("persistence_file", "persistence_interval"):
        if old in node:  # not an alias: a directory of log + snapshot replaces the one file
            c.fail(f"processors::gravel::{old}", "removed: the state is kept in "
                   "processors::gravel::storage::directory (a directory, see the README)")
    gravel = GravelConfig(
        c.duration(node.get("expire_after"), "processors::gravel::expire_after", 0.0),
        c.positive_int(node.get("max_series"), "processors::gravel::max_series", 1_000_000),
        None, _rules(c, node.get("rules")), _storage(c, node.get("storage")))
    if node.get("max_groups") is not None:
        gravel.max_groups = c.positive_int(node["max_groups"], "processors::gravel::max_groups", 0)
    gravel.max_idempotency_keys = c.positive_int(
        node.get("max_idempotency_keys"), "processors::gravel::max_idempotency_keys", 100_000)
    gravel.idempotency_key_ttl = c.duration(
        node.get("idempotency_key_ttl"), "processors::gravel::idempotency_key_ttl", 3600.0)
    if gravel.idempotency_key_ttl <= 0:
        c.fail("processors::gravel::idempotency_key_ttl",
               f'must be > 0 (got "{node.get("idempotency_key_ttl")}")')

    node = c.mapping(exporters.get("prometheus"), "exporters::prometheus",
                     ("endpoint", "tls", "auth") + HTTP_LIMIT_KEYS)
    prometheus = PrometheusConfig(
        c.endpoint(node.get("endpoint", "localhost:4278"), "exporters::prometheus::endpoint"),
        _http_limits(c, node, "exporters::prometheus") if any(k in node for k in HTTP_LIMIT_KEYS)
        else None,
        check_tls(c, node.get("tls"), "exporters::prometheus::tls"),
        check_auth(c, node.get("auth"), "exporters::prometheus::auth", extensions))
    check_shared_tls(c, [(x.endpoint, x.tls) for x in (pushgateway, prometheus, otlp) if x is not None])
    if prometheus.limits is not None and pushgateway is not None \
            and prometheus.endpoint == pushgateway.endpoint and prometheus.limits != pushgateway.limits:
        c.fail("exporters::prometheus", "shares its endpoint (one server) with receivers::pushgateway: "
               f"its {', '.join(HTTP_LIMIT_KEYS)} must be the same or absent")

    telemetry = c.mapping(service.get("telemetry"), "service::telemetry", ("logs", "metrics"))
    logs = c.mapping(telemetry.get("logs"), "service::telemetry::logs", ("level",))
    level = logs.get("level", "info")
    if level not in _LOG_LEVELS:
        c.fail("service::telemetry::logs::level", f'must be one of {", ".join(_LOG_LEVELS)} (got "{level}")')
    telemetry_address = _telemetry_address(c, telemetry, pushgateway, otlp, prometheus)

    if c.problems:
        raise ConfigError(c.problems)
    return Config(pushgateway, otlp, gravel, prometheus, level, telemetry_address, doc, extensions)


def _telemetry_address(c: _Checker, telemetry: dict, pushgateway, otlp, prometheus) -> Endpoint | None:
    """``service::telemetry::metrics::address`` (default localhost:8888, "" = off): its own server,
    so it may not share another endpoint (both would serve GET /metrics)."""
    path = "service::telemetry::metrics::address"
    metrics = c.mapping(telemetry.get("metrics"), "service::telemetry::metrics", ("address",))
    value = metrics.get("address", "localhost:8888")
    if value in ("", None):
        return None
    address = c.endpoint(value, path)
    others = [("exporters::prometheus::endpoint", prometheus.endpoint)]
    if pushgateway is not None:
        others.append(("receivers::pushgateway::endpoint", pushgateway.endpoint))
    if otlp is not None:
        others.append(("receivers::otlp::protocols::http::endpoint", otlp.endpoint))
    for other_path, endpoint in others:
        if address is not None and address == endpoint and address.port != 0:
            c.fail(path, f'must differ from {other_path} (both are "{value}")')
    return address


def _storage(c: _Checker, node) -> StorageConfig:
    path = "processors::gravel::storage"
    node = c.mapping(node, path, ("directory", "sync", "sync_interval", "snapshot_interval",
                                  "snapshot_log_size", "redis"))
    directory = node.get("directory") or ""
    if not isinstance(directory, str):
        c.fail(f"{path}::directory", f"must be a directory path (got {directory!r})")
        directory = ""
    sync = node.get("sync", "interval")
    if sync not in ("always", "interval", "never"):
        c.fail(f"{path}::sync", f"must be always, interval or never (got {sync!r})")
    sync_interval = c.duration(node.get("sync_interval"), f"{path}::sync_interval", 1.0)
    if sync_interval <= 0:
        c.fail(f"{path}::sync_interval", f'must be > 0 (got "{node.get("sync_interval")}")')
    snapshot_interval = c.duration(node.get("snapshot_interval"), f"{path}::snapshot_interval",
                                   300.0)
    if snapshot_interval <= 0:
        c.fail(f"{path}::snapshot_interval",
               f'must be > 0 (got "{node.get("snapshot_interval")}")')
    log_size = node.get("snapshot_log_size")
    snapshot_log_size = 0 if log_size in (0, "0") else c.size(
        log_size, f"{path}::snapshot_log_size", 64 << 20)
    redis = None
    if node.get("redis") is not None:
        redis = _redis(c, node["redis"], f"{path}::redis")
        if directory:
            c.fail(f"{path}::redis", "and storage::directory exclude each other: the replicas' "
                   "state is on Redis")
    return StorageConfig(directory, sync, sync_interval, snapshot_interval, snapshot_log_size,
                         redis)


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _redis(c: _Checker, node, path: str) -> RedisConfig:
    r = c.mapping(node, path, ("addresses", "username", "password", "tls", "key_prefix",
                                        "wait_replicas", "wait_timeout"))
    addresses = r.get("addresses")
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, list) or not addresses:
        c.fail(f"{path}::addresses", f"must be a list of host:port (got {addresses!r})")
        addresses = []
    for i, address in enumerate(addresses):
        host, sep, port = str(address).rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            c.fail(f"{path}::addresses::{i}", f'must be host:port (got "{address}")')
    text = {}
    for key in ("username", "password", "key_prefix"):
        value = r.get(key, "otelgravel" if key == "key_prefix" else "")
        if not isinstance(value, str):
            c.fail(f"{path}::{key}", f"must be a string (got {value!r})")
            value = ""
        missing = [name for name in _ENV.findall(value) if name not in os.environ]
        if missing:
            c.fail(f"{path}::{key}", f"names the unset environment variable {missing[0]}")
        text[key] = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if not text["key_prefix"] or any(ch in text["key_prefix"] for ch in "{} "):
        c.fail(f"{path}::key_prefix", f'must be non-empty, without braces or spaces (got "{text["key_prefix"]}")')
    tls = c.mapping(r.get("tls"), f"{path}::tls", ("ca_file",))
    ca_file = tls.get("ca_file") or ""
    if ca_file and not os.path.isfile(ca_file):
        c.fail(f"{path}::tls::ca_file", f'no such file "{ca_file}"')
    wait = r.get("wait_replicas", 0)
    if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
        c.fail(f"{path}::wait_replicas", f"must be an integer >= 0 (got {wait!r})")
        wait = 0
    timeout = c.duration(r.get("wait_timeout"), f"{path}::wait_timeout", 0.5)
    if timeout <= 0:
        c.fail(f"{path}::wait_timeout", f'must be > 0 (got "{r.get("wait_timeout")}")')
    return RedisConfig([str(a) for a in addresses], text["username"], text["password"], ca_file,
                       text["key_prefix"], wait, timeout)


def _http_limits(c: _Checker, node: dict, path: str) -> HttpLimits:
    d = HttpLimits()
    limits = HttpLimits(
        c.duration(node.get("read_header_timeout"), f"{path}::read_header_timeout", d.read_header_timeout),
        c.duration(node.get("read_timeout"), f"{path}::read_timeout", d.read_timeout),
        c.duration(node.get("idle_timeout"), f"{path}::idle_timeout", d.idle_timeout),
        0 if node.get("max_connections") == 0 else  # 0: no bound
        c.positive_int(node.get("max_connections"), f"{path}::max_connections", d.max_connections))
    if limits.idle_timeout <= 0:
        c.fail(f"{path}::idle_timeout", f'must be > 0 (got "{node.get("idle_timeout")}")')
    return limits


def _rules(c: _Checker, node) -> list[tuple[str, ClearMode]]:
    if node is None:
        return []
    if not isinstance(node, list):
        c.fail("processors::gravel::rules", f"must be a list (got {node!r})")
        return []
    rules = []
    for i, rule in enumerate(node):
        path = f"processors::gravel::rules::{i}"
        rule = c.mapping(rule, path, ("metric", "clear_mode"))
        pattern, mode_text = rule.get("metric"), rule.get("clear_mode")
        if not isinstance(pattern, str):
            c.fail(f"{path}::metric", f"must be a regular expression string (got {pattern!r})")
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            c.fail(f"{path}::metric", f'invalid regular expression "{pattern}": {exc}')
            continue
        try:
            mode = parse_clear_mode(str(mode_text))
        except ClearModeError as exc:
            c.fail(f"{path}::clear_mode", str(exc))
            continue
        rules.append((pattern, mode))
    return rules


_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.S)


def expand_env(node, environ, path: str = ""):
    """``${env:NAME}`` and ``${NAME}`` (``${env:NAME:-default}`` too) in every string value, as the
    Collector does; ``$${`` is a literal ``${``. An unset variable is a problem naming the key."""
    problems: list[str] = []

    def walk(value, at: str):
        if isinstance(value, dict):
            return {k: walk(v, f"{at}::{k}" if at else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{at}::{i}") for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def substitute(match: re.Match) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            ref = _ENV_NAME.fullmatch(match.group(2))
            if ref is None:
                problems.append(f"{at}: unsupported reference ${{{match.group(2)}}} "
                                "(use ${env:NAME} or ${NAME})")
                return ""
            name, default = ref.groups()
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(f"{at}: environment variable {name} is not set")
            return ""

        return _REFERENCE.sub(substitute, value)

    expanded = walk(node, path)
    if problems:
        raise ConfigError(problems)
    return expanded


def load_config(path: str | None = None, sets: list[str] | None = None,
                environ=None) -> Config:
    doc = apply_sets(load_document(path), sets or [])
    return build_config(expand_env(doc, os.environ if environ is None else environ))
