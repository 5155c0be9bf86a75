"""deploy/: the compose file and the Kubernetes manifests agree with the config they carry.

No container runtime or cluster here: the configs go through the real loader (``load_config``),
and the ports, probes, mounts and targets of the manifests are checked against what it returns.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from otelgravel.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _config(tmp_path, text, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(str(path))


def _ports(config):
    return {config.pushgateway.endpoint.port, config.prometheus.endpoint.port,
            config.otlp.endpoint.port}


def test_compose_replicas_mount_the_config_and_probe_its_port(tmp_path, monkeypatch):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    gateways = [s for n, s in services.items() if n.startswith("gateway-")]
    assert len(gateways) == 2 and "redis" in services and "prometheus" in services
    config = _config(tmp_path, (DEPLOY / "otelgravel.yaml").read_text(), monkeypatch)
    redis = config.gravel.storage.redis
    assert redis.addresses == ["redis:6379"] and redis.password == "s3cret"
    push = config.pushgateway.endpoint.port
    assert config.prometheus.endpoint.port == push  # push and scrape on one port
    for gw in gateways:
        mount = next(v for v in gw["volumes"] if v.startswith("./otelgravel.yaml:"))
        target = mount.split(":")[1]
        assert gw["command"][gw["command"].index("--config") + 1] == target
        assert {int(p.split(":")[1]) for p in gw["ports"]} == _ports(config)
        assert f"127.0.0.1:{push}/-/ready" in " ".join(gw["healthcheck"]["test"])
        assert "REDIS_PASSWORD" in gw["environment"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{n}:{push}" for n in services if n.startswith("gateway-"))
    assert "--appendonly" in services["redis"]["command"]
    # one secret, from the environment: Redis requires it, the gateways send it
    raw = yaml.safe_load((DEPLOY / "otelgravel.yaml").read_text())
    assert raw["processors"]["gravel"]["storage"]["redis"]["password"] == "${env:REDIS_PASSWORD}"
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    assert "$$REDIS_PASSWORD" in " ".join(services["redis"]["healthcheck"]["test"])


def test_kubernetes_deployment_probes_ports_and_volume_agree_with_the_configmap(tmp_path, monkeypatch):
    configmap = yaml.safe_load((DEPLOY / "kubernetes" / "configmap.yaml").read_text())
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    service = yaml.safe_load((DEPLOY / "kubernetes" / "service.yaml").read_text())
    (key, text), = configmap["data"].items()
    config = _config(tmp_path, text, monkeypatch)
    assert len(config.gravel.storage.redis.addresses) == 3  # seeds of a Redis Cluster
    assert config.gravel.storage.redis.wait_replicas == 1

    pod = deployment["spec"]["template"]["spec"]
    container, = pod["containers"]
    volume, = pod["volumes"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount, = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    args = container["args"]
    assert args[args.index("--config") + 1] == f"{mount['mountPath']}/{key}"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == _ports(config)
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready",
                                                      "port": config.pushgateway.endpoint.port}
    assert container["livenessProbe"]["httpGet"]["port"] == config.pushgateway.endpoint.port
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    raw = yaml.safe_load(text)
    assert raw["processors"]["gravel"]["storage"]["redis"]["password"] == "${env:REDIS_PASSWORD}"
