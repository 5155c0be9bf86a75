"""Config loading: defaults, --set, and every problem named with its key path."""
from pathlib import Path

import pytest

from otelgravel.config import Endpoint, load_config
from otelgravel.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_embedded_default_matches_the_spec():
    config = load_config()
    assert config.pushgateway.endpoint == Endpoint("localhost", 4278)
    assert config.prometheus.endpoint == config.pushgateway.endpoint
    assert config.otlp.endpoint == Endpoint("localhost", 4318)
    assert config.pushgateway.admin_api is False
    assert config.pushgateway.max_body_size == 16 << 20
    assert (config.gravel.expire_after, config.gravel.max_series, config.gravel.rules) == (0, 1_000_000, [])
    storage = config.gravel.storage
    assert (storage.directory, storage.sync, storage.sync_interval, storage.snapshot_interval) \
        == ("", "interval", 1.0, 300.0)


def test_otlp_utf8_names_is_off_by_default():
    assert load_config().otlp.utf8_names is False
    assert load_config(None, ["receivers.otlp.utf8_names=true"]).otlp.utf8_names is True


def test_configs_default_is_the_embedded_default():
    embedded = (REPO / "otelgravel" / "default_config.yaml").read_text()
    assert (REPO / "configs" / "default.yaml").read_text() == embedded


def test_set_takes_text_that_is_not_yaml_as_it_is():
    config = load_config(None, ["receivers.pushgateway.endpoint=[::1]:4278"])
    assert config.pushgateway.endpoint == Endpoint("::1", 4278)
    assert str(config.pushgateway.endpoint) == "[::1]:4278"


def test_set_overrides_with_yaml_values():
    config = load_config(None, ["receivers.pushgateway.admin_api=true",
                                "processors::gravel::expire_after=2s",
                                "receivers.pushgateway.endpoint=127.0.0.1:0",
                                "processors.gravel.rules=[{metric: '^mem_.*', clear_mode: mean5m}]"])
    assert config.pushgateway.admin_api is True
    assert config.gravel.expire_after == 2
    assert config.pushgateway.endpoint == Endpoint("127.0.0.1", 0)
    assert [(p, m.text) for p, m in config.gravel.rules] == [("^mem_.*", "mean5m")]


@pytest.mark.parametrize("sets, problem", [
    (["processors.gravel.expire_after=-1s"], 'processors::gravel::expire_after: must be a duration >= 0 such as 0s, 30s, 5m, 1h30m (got "-1s")'),
    (["receivers.pushgateway.endpoint=nowhere"], 'receivers::pushgateway::endpoint: must be host:port (got "nowhere")'),
    (["receivers.pushgateway.admin_api=maybe"], 'receivers::pushgateway::admin_api: must be true or false (got "maybe")'),
    (["receivers.pushgateway.colour=blue"], "receivers::pushgateway::colour: unknown key"),
    (["receivers.otlp.utf8_names=sometimes"],
     'receivers::otlp::utf8_names: must be true or false (got "sometimes")'),
    (["service.pipelines.metrics.processors=[batch]"], 'service::pipelines::metrics::processors: references processor "batch" which is not configured'),
    (["processors.gravel.max_series=0"], "processors::gravel::max_series: must be a whole number > 0"),
    (["processors.gravel.max_groups=0"], "processors::gravel::max_groups: must be a whole number > 0"),
    (["receivers.pushgateway.read_header_timeout=-1s"],
     "receivers::pushgateway::read_header_timeout: must be a duration >= 0"),
    (["receivers.otlp.protocols.http.idle_timeout=0s"],
     "receivers::otlp::protocols::http::idle_timeout: must be > 0"),
    (["receivers.pushgateway.max_connections=-5"],
     "receivers::pushgateway::max_connections: must be a whole number > 0"),
    (["exporters.prometheus.read_timeout=5s"],
     "exporters::prometheus: shares its endpoint (one server) with receivers::pushgateway"),
    (["processors.gravel.rules=[{metric: '(', clear_mode: sum}]"], "processors::gravel::rules::0::metric: invalid regular expression"),
    (["processors.gravel.rules=[{metric: '^a', clear_mode: summary5m}]"], 'processors::gravel::rules::0::clear_mode: invalid clear_mode "summary5m"'),
    (["receivers.otlp.protocols.http.max_body_size=lots"], "receivers::otlp::protocols::http::max_body_size: must be a size"),
    (["service.telemetry.logs.level=loud"], "service::telemetry::logs::level: must be one of"),
    (["processors.gravel.persistence_file=/tmp/x"],
     "processors::gravel::persistence_file: removed: the state is kept in "
     "processors::gravel::storage::directory"),
    (["processors.gravel.persistence_interval=5m"], "processors::gravel::persistence_interval: removed"),
    (["processors.gravel.storage.directory=[1]"], "processors::gravel::storage::directory: must be a directory path"),
    (["processors.gravel.storage.sync=sometimes"],
     "processors::gravel::storage::sync: must be always, interval or never (got 'sometimes')"),
    (["processors.gravel.storage.sync_interval=0s"], 'processors::gravel::storage::sync_interval: must be > 0 (got "0s")'),
    (["processors.gravel.storage.snapshot_interval=-1s"], "processors::gravel::storage::snapshot_interval: must"),
    (["processors.gravel.storage.path=/x"], "processors::gravel::storage"),
    (["service.telemetry.metrics.address=nowhere"],
     'service::telemetry::metrics::address: must be host:port (got "nowhere")'),
    (["service.telemetry.metrics.address=localhost:4278"],
     'service::telemetry::metrics::address: must differ from exporters::prometheus::endpoint'),
    (["service.telemetry.metrics.address=localhost:4318"],
     'service::telemetry::metrics::address: must differ from receivers::otlp::protocols::http::endpoint'),
    (["service.telemetry.metrics.colour=red"], "service::telemetry::metrics::colour: unknown key"),
])
def test_each_problem_names_its_key(sets, problem):
    with pytest.raises(ConfigError) as err:
        load_config(None, sets)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["processors.gravel.expire_after=soon", "exporters.prometheus.endpoint=x"])
    assert len(err.value.problems) == 2


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    load_config(str(path))


@pytest.mark.parametrize("sets, address", [
    ([], Endpoint("localhost", 8888)),
    (["service.telemetry.metrics.address=0.0.0.0:9999"], Endpoint("0.0.0.0", 9999)),
    (["service.telemetry.metrics.address="], None),
    (["service.telemetry.metrics.address=''"], None),
])
def test_telemetry_address(sets, address):
    assert load_config(None, sets).telemetry_address == address

