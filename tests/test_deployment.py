"""Deployment files, checked by parsing them against the code they deploy.

No Docker engine runs here, so nothing is built or started: docker-compose.yml, the Dockerfile,
deploy/k8s and the collector/Prometheus configs are read as data and compared with the Settings
fields, the FastAPI routes, the default ports and the gRPC grace period.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import TypeAdapter

from knowledge_service.core.config import Settings
from knowledge_service.doors.http.app import create_app
from knowledge_service.serve import check_exposure, is_loopback

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PRODUCTION = REPO / "README.md"  # its "Production" section
CORE_SERVICES = {"qdrant", "redis", "knowledge"}
OBSERVABILITY_SERVICES = {"otel-collector", "jaeger", "prometheus"}
SECRET_WORDS = {"KEY", "APIKEY", "SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIALS"}
# ${VAR}, ${VAR:-default}, ${VAR:?message}, ... but not the $${...} escape.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
URL = re.compile(r"https?://[^/'\"\s]+(/[^'\"\s?]*)")


# ---- helpers -------------------------------------------------------------------------------------


def settings_env_names() -> set[str]:
    return {f"KNOWLEDGE_{name.upper()}" for name in Settings.model_fields}


def valid_setting(name: str) -> bool:
    return name in settings_env_names()


def collect_paths(routes: list[Any], prefix: str = "") -> set[str]:
    """Every path served by these routes, descending into included routers and mounts."""
    paths: set[str] = set()
    for route in routes:
        path = getattr(route, "path", None)
        if path is not None:
            paths.add(prefix + path)
        sub = getattr(route, "original_router", None)  # FastAPI's included-router wrapper
        if sub is not None:
            context = getattr(route, "include_context", None)
            paths |= collect_paths(sub.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif path is not None and getattr(route, "routes", None):  # a Mount
            paths |= collect_paths(route.routes, prefix + path)
    return paths


def pinned(image: str) -> bool:
    """A digest, or an explicit version tag (with a digit: not `latest`, `stable` or `alpine`)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all ("redis", or "host:5000/redis")
        return False
    return tag != "latest" and any(c.isdigit() for c in tag)


def env_dict(env: Any) -> dict[str, str]:
    """A compose `environment` in either form (mapping or list of KEY=value)."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def command_tokens(command: Any) -> list[str]:
    return [str(t) for t in command] if isinstance(command, list) else shlex.split(str(command))


def option_value(tokens: list[str], option: str) -> str | None:
    if option in tokens and tokens.index(option) + 1 < len(tokens):
        return tokens[tokens.index(option) + 1]
    return None


def container_ports(ports: list[Any]) -> set[int]:
    out = set()
    for p in ports or []:
        if isinstance(p, dict):
            out.add(int(p["target"]))
        else:
            out.add(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
    return out


def probe_url(test: Any) -> tuple[int | None, str]:
    """(port, path) of the URL a healthcheck command asks."""
    text = " ".join(command_tokens(test))
    match = URL.search(text)
    assert match, f"no URL in healthcheck {text!r}"
    return urlsplit(match.group(0)).port, match.group(1)


def duration_s(value: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(number) * units[unit]
    return total


def memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9, "": 1}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity)).groups()
    return float(number) * units[unit or ""]


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, args = line.strip().partition(" ")
            out.append((word.upper(), args.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def assignments(word: str, args: str) -> dict[str, str]:
    """The variables an ENV or ARG line sets (`K=v K2=v2`, `ENV K v`, `ARG K`)."""
    tokens = shlex.split(args)
    if word == "ENV" and tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return {k: v for k, _, v in (t.partition("=") for t in tokens)}


def looks_secret(name: str) -> bool:
    """KEY/SECRET/PASSWORD/TOKEN as a word of the name; a *_FILE/_PATH/_DIR holds a path, not a secret."""
    words = name.upper().split("_")
    return bool(set(words) & SECRET_WORDS) and words[-1] not in {"FILE", "PATH", "DIR"}


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def routes() -> set[str]:
    """Paths of the real FastAPI app, built but never started (the lifespan does not run)."""
    return collect_paths(create_app(Settings()).routes)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def knowledge_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return env_dict(services["knowledge"].get("environment"))


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def exposed(dockerfile: list[tuple[str, str]]) -> set[int]:
    return {int(p.split("/")[0]) for w, a in final_stage(dockerfile) if w == "EXPOSE" for p in a.split()}


@pytest.fixture(scope="module")
def k8s() -> dict[str, list[dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s, by kind."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


@pytest.fixture(scope="module")
def deployment(k8s: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (dep,) = k8s["Deployment"]
    return dep


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def configmap(k8s: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (cm,) = k8s["ConfigMap"]
    return cm


# ---- settings bookkeeping ------------------------------------------------------------------------


# ---- docker-compose.yml --------------------------------------------------------------------------


def test_compose_images_pinned(services: dict[str, dict[str, Any]]) -> None:
    unpinned = {name: s.get("image") for name, s in services.items() if not pinned(str(s.get("image", "")))}
    assert not unpinned, f"images without a version tag (or digest): {unpinned}"


def test_qdrant_persistent_volume_and_required_api_key(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    qdrant = services["qdrant"]
    mounts = [str(v).split(":") for v in qdrant.get("volumes", [])]
    storage = [src for src, target, *_ in mounts if target == "/qdrant/storage"]
    assert storage and storage[0] in (compose.get("volumes") or {}), (
        "Qdrant's /qdrant/storage must be a named volume declared under top-level volumes"
    )
    key = env_dict(qdrant.get("environment")).get("QDRANT__SERVICE__API_KEY", "")
    assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", key), f"Qdrant API key must be ${{VAR:?message}}, got {key!r}"


def test_side_car_uses_the_same_qdrant_key(
    services: dict[str, dict[str, Any]], knowledge_env: dict[str, str]
) -> None:
    server = env_dict(services["qdrant"]["environment"])["QDRANT__SERVICE__API_KEY"]
    client = knowledge_env.get("KNOWLEDGE_QDRANT_API_KEY", "")
    assert INTERPOLATION.fullmatch(client), f"KNOWLEDGE_QDRANT_API_KEY must come from a variable: {client!r}"
    assert INTERPOLATION.fullmatch(client).group(1) == INTERPOLATION.fullmatch(server).group(1)


def test_redis_is_cache_only(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    tokens = command_tokens(redis.get("command", []))
    assert option_value(tokens, "--maxmemory"), "Redis needs a --maxmemory bound"
    policy = option_value(tokens, "--maxmemory-policy")
    assert policy and policy != "noeviction", f"Redis must evict as a cache, policy={policy!r}"
    assert option_value(tokens, "--save") == "", 'RDB snapshots must be off (--save "")'
    assert option_value(tokens, "--appendonly") == "no", "AOF must be off (--appendonly no)"
    assert not redis.get("volumes"), "a cache-only Redis keeps no volume"


def test_stores_publish_no_host_ports(services: dict[str, dict[str, Any]]) -> None:
    assert not services["qdrant"].get("ports") and not services["redis"].get("ports")


def test_knowledge_environment_names_are_settings(knowledge_env: dict[str, str]) -> None:
    unknown = sorted(k for k in knowledge_env if not (k.startswith("KNOWLEDGE_") and valid_setting(k)))
    assert not unknown, f"not KNOWLEDGE_* settings (config.py): {unknown}"
    required = {"KNOWLEDGE_QDRANT_URL", "KNOWLEDGE_QDRANT_API_KEY", "KNOWLEDGE_REDIS_URL"}
    assert required <= knowledge_env.keys(), f"missing {sorted(required - knowledge_env.keys())}"


def test_knowledge_points_at_the_compose_stores(
    services: dict[str, dict[str, Any]], knowledge_env: dict[str, str]
) -> None:
    for setting, service in (("KNOWLEDGE_QDRANT_URL", "qdrant"), ("KNOWLEDGE_REDIS_URL", "redis")):
        host = urlsplit(knowledge_env[setting]).hostname
        assert host == service and service in services, f"{setting} points at {host!r}"


def test_front_doors_listen_on_all_interfaces(
    knowledge_env: dict[str, str], dockerfile: list[tuple[str, str]]
) -> None:
    image_env: dict[str, str] = {}
    for word, args in final_stage(dockerfile):
        if word == "ENV":
            image_env.update(assignments(word, args))
    for name in ("KNOWLEDGE_HTTP_HOST", "KNOWLEDGE_GRPC_HOST"):
        assert image_env.get(name) == "0.0.0.0", f"Dockerfile must set {name}=0.0.0.0"
        assert knowledge_env.get(name, "0.0.0.0") == "0.0.0.0", f"compose overrides {name}"


def test_knowledge_ports_match_dockerfile_and_settings(
    services: dict[str, dict[str, Any]], exposed: set[int]
) -> None:
    defaults = Settings()
    expected = {defaults.http_port, defaults.grpc_port}
    assert container_ports(services["knowledge"].get("ports", [])) == expected
    assert exposed == expected


def test_knowledge_healthcheck_asks_an_existing_route(
    services: dict[str, dict[str, Any]], routes: set[str]
) -> None:
    port, path = probe_url(services["knowledge"]["healthcheck"]["test"])
    assert path in routes, f"healthcheck asks {path}, which the app does not serve"
    assert port == Settings().http_port


def test_knowledge_waits_for_healthy_stores(services: dict[str, dict[str, Any]]) -> None:
    depends = services["knowledge"].get("depends_on")
    assert isinstance(depends, dict) and {"qdrant", "redis"} <= depends.keys()
    for name, spec in depends.items():
        assert spec.get("condition") == "service_healthy", f"{name}: condition must be service_healthy"
        assert services[name].get("healthcheck"), f"{name} has no healthcheck to wait for"


def test_knowledge_stop_grace_exceeds_grpc_grace(
    services: dict[str, dict[str, Any]], knowledge_env: dict[str, str]
) -> None:
    grace = float(knowledge_env.get("KNOWLEDGE_GRPC_GRACE_S", Settings().grpc_grace_s))
    assert duration_s(str(services["knowledge"].get("stop_grace_period", "10s"))) > grace


def test_compose_health_checks_need_no_key(knowledge_env: dict[str, str]) -> None:
    auth = TypeAdapter(bool).validate_python(knowledge_env.get("KNOWLEDGE_AUTH_REQUIRED", "false"))
    public = knowledge_env.get("KNOWLEDGE_HEALTH_PUBLIC", str(Settings().health_public))
    assert auth, "the production compose file should require API keys"
    assert TypeAdapter(bool).validate_python(public), "health checks send no key: /readyz must be public"


def test_api_keys_file_is_a_mounted_secret(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], knowledge_env: dict[str, str]
) -> None:
    path = knowledge_env.get("KNOWLEDGE_API_KEYS_FILE", "")
    match = re.fullmatch(r"/run/secrets/([\w.-]+)", path)
    assert match, f"KNOWLEDGE_API_KEYS_FILE should be a compose secret under /run/secrets: {path!r}"
    name = match.group(1)
    mounted = {s if isinstance(s, str) else s.get("source") for s in services["knowledge"].get("secrets", [])}
    assert name in mounted, f"secret {name} is not mounted into the knowledge service"
    assert (compose.get("secrets") or {}).get(name, {}).get("file"), f"top-level secret {name} has no file"


def test_observability_only_under_its_profile(services: dict[str, dict[str, Any]]) -> None:
    assert OBSERVABILITY_SERVICES <= services.keys()
    for name in OBSERVABILITY_SERVICES:
        assert services[name].get("profiles") == ["observability"], name
    always_on = {name for name, s in services.items() if not s.get("profiles")}
    assert always_on == CORE_SERVICES
    depends = services["knowledge"].get("depends_on") or {}
    assert not OBSERVABILITY_SERVICES & set(depends), "the side-car must start without the profile"


def test_observability_config_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name in OBSERVABILITY_SERVICES:
        for volume in services[name].get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (REPO / source).is_file(), f"{name}: {source} does not exist"


def test_collector_receives_otlp_and_exports_to_jaeger(knowledge_env: dict[str, str]) -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    endpoint = urlsplit(knowledge_env["KNOWLEDGE_OTEL_ENDPOINT"])
    assert endpoint.hostname == "otel-collector"
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert int(grpc.rsplit(":", 1)[1]) == endpoint.port, "side-car endpoint port != collector receiver"
    traces = config["service"]["pipelines"]["traces"]
    assert "otlp" in traces["receivers"]
    targets = {urlsplit("//" + config["exporters"][e]["endpoint"]).hostname for e in traces["exporters"]}
    assert "jaeger" in targets, f"traces go to {targets}, not to the jaeger service"


def test_prometheus_scrapes_the_side_car(routes: set[str]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    port = Settings().http_port
    jobs = [
        job
        for job in config["scrape_configs"]
        if any(f"knowledge:{port}" in c.get("targets", []) for c in job.get("static_configs", []))
    ]
    assert jobs, f"no scrape job targets knowledge:{port}"
    path = jobs[0].get("metrics_path", "/metrics")
    assert path in routes, f"Prometheus scrapes {path}, which the app does not serve"


def test_interpolated_variables_are_documented(compose_text: str) -> None:
    documented = PRODUCTION.read_text()
    found = INTERPOLATION.findall(compose_text)
    required = {name for name, op, _ in found if op == ":?"}
    assert required, "expected required ${VAR:?...} variables (at least QDRANT_API_KEY)"
    for name, op, message in found:
        if op == ":?":
            assert message.strip(), f"${{{name}:?}} needs a message saying what to set"
        assert f"`{name}`" in documented, f"{name} is not documented in the README"


# ---- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_bases_pinned(dockerfile: list[tuple[str, str]]) -> None:
    stages: set[str] = set()
    for word, args in dockerfile:
        if word == "FROM":
            tokens = [t for t in args.split() if not t.startswith("--")]
            image = tokens[0]
            assert image in stages or pinned(image), f"FROM {image} is not pinned to a version tag"
            if len(tokens) == 3 and tokens[1].upper() == "AS":
                stages.add(tokens[2])


def test_dockerfile_runs_as_non_root(dockerfile: list[tuple[str, str]]) -> None:
    users = [args for word, args in final_stage(dockerfile) if word == "USER"]
    assert users, "the runtime stage sets no USER (runs as root)"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_healthcheck_asks_an_existing_route(
    dockerfile: list[tuple[str, str]], routes: set[str]
) -> None:
    checks = [args for word, args in final_stage(dockerfile) if word == "HEALTHCHECK"]
    assert checks and "NONE" not in checks[-1].split(), "no HEALTHCHECK"
    cmd = checks[-1].split("CMD", 1)[1].strip()
    port, path = probe_url(json.loads(cmd) if cmd.startswith("[") else cmd)
    assert path in routes, f"HEALTHCHECK asks {path}, which the app does not serve"
    assert port == Settings().http_port


def test_dockerfile_bakes_in_no_secret(dockerfile: list[tuple[str, str]]) -> None:
    for word, args in dockerfile:
        if word in {"ENV", "ARG"}:
            for name, value in assignments(word, args).items():
                assert not (looks_secret(name) and value), f"{word} {name} has a value baked into the image"


def test_dockerfile_is_offline_for_models(dockerfile: list[tuple[str, str]]) -> None:
    env: dict[str, str] = {}
    for word, args in final_stage(dockerfile):
        if word == "ENV":
            env.update(assignments(word, args))
    assert env.get("HF_HUB_OFFLINE") == "1"


def test_dockerfile_installs_cpu_torch_before_the_service(dockerfile: list[tuple[str, str]]) -> None:
    runs = [args for word, args in dockerfile if word == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    assert "download.pytorch.org/whl/cpu" in runs[torch]
    service = next(i for i, r in enumerate(runs) if re.search(r"pip install (\S+ )*\.(\s|$)", r))
    assert torch < service, "torch (CPU) must be installed before the service"


def test_dockerfile_cmd_runs_knowledge_serve(dockerfile: list[tuple[str, str]]) -> None:
    cmds = [args for word, args in final_stage(dockerfile) if word == "CMD"]
    assert cmds, "no CMD"
    cmd = json.loads(cmds[-1]) if cmds[-1].startswith("[") else shlex.split(cmds[-1])
    assert cmd == ["knowledge", "serve"]


# ---- Kubernetes ----------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == manifests - {"secret.example.yaml"}


def test_k8s_image_pinned(container: dict[str, Any]) -> None:
    assert pinned(container["image"]), container["image"]


def test_deployment_replicas_and_resources(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    assert deployment["spec"]["replicas"] >= 2
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys(), f"{kind} needs cpu and memory"
    # MiniLM + torch on CPU take about 1-1.5 GiB: less than 1 GiB gets the pod OOM-killed.
    assert memory_bytes(resources["requests"]["memory"]) >= 2**30
    assert memory_bytes(resources["limits"]["memory"]) >= memory_bytes(resources["requests"]["memory"])


def test_deployment_probes_use_existing_routes(container: dict[str, Any], routes: set[str]) -> None:
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz" and readiness["path"] in routes
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        if probe in container:
            get = container[probe]["httpGet"]
            assert get["path"] in routes, f"{probe} asks {get['path']}, which the app does not serve"
            assert port_names.get(get["port"], get["port"]) == Settings().http_port, probe


def test_deployment_ports_match(container: dict[str, Any], exposed: set[int]) -> None:
    defaults = Settings()
    ports = {p["containerPort"] for p in container["ports"]}
    assert ports == {defaults.http_port, defaults.grpc_port} == exposed


def test_services_select_the_pods_and_their_ports(
    k8s: dict[str, list[dict[str, Any]]], deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    by_name = {p["name"]: p["containerPort"] for p in container["ports"]}
    targets: set[int] = set()
    for service in k8s["Service"]:
        selector = service["spec"]["selector"]
        assert selector.items() <= labels.items(), f"{service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in by_name or target in by_name.values(), f"unknown targetPort {target}"
            targets.add(by_name.get(target, target))
    assert targets == set(by_name.values()), "every container port should be reachable through a Service"
    assert any(s["spec"].get("clusterIP") == "None" for s in k8s["Service"]), (
        "a headless Service is needed for client-side gRPC load balancing"
    )


def test_hpa_scales_the_deployment_on_cpu(
    k8s: dict[str, list[dict[str, Any]]], deployment: dict[str, Any]
) -> None:
    (hpa,) = k8s["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] == 10
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization"


def test_termination_grace_exceeds_service_grace(
    deployment: dict[str, Any], container: dict[str, Any], configmap: dict[str, Any]
) -> None:
    grace = float(configmap["data"].get("KNOWLEDGE_GRPC_GRACE_S", Settings().grpc_grace_s))
    pre_stop = json.dumps(container.get("lifecycle", {}).get("preStop", {}))
    pause = sum(float(s) for s in re.findall(r"sleep\D{0,3}(\d+(?:\.\d+)?)", pre_stop))
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert period > grace + pause, f"{period}s must exceed preStop {pause}s + gRPC grace {grace}s"
    assert period > Settings().grpc_grace_s


def test_k8s_environment_names_are_settings(container: dict[str, Any], configmap: dict[str, Any]) -> None:
    names = set(configmap["data"]) | {e["name"] for e in container.get("env", [])}
    unknown = sorted(n for n in names if n.startswith("KNOWLEDGE_") and not valid_setting(n))
    assert not unknown, f"not settings (config.py): {unknown}"
    assert all(n.startswith("KNOWLEDGE_") for n in configmap["data"]), "ConfigMap holds settings only"
    assert {"KNOWLEDGE_QDRANT_URL", "KNOWLEDGE_QDRANT_API_KEY", "KNOWLEDGE_REDIS_URL"} <= names
    assert (
        configmap["data"].get("KNOWLEDGE_HTTP_HOST")
        == configmap["data"].get("KNOWLEDGE_GRPC_HOST")
        == "0.0.0.0"
    )


def test_k8s_probes_need_no_key(configmap: dict[str, Any]) -> None:
    data = configmap["data"]
    assert TypeAdapter(bool).validate_python(data.get("KNOWLEDGE_AUTH_REQUIRED", "false"))
    public = data.get("KNOWLEDGE_HEALTH_PUBLIC", str(Settings().health_public))
    assert TypeAdapter(bool).validate_python(public), "the kubelet's probes send no key"


def test_k8s_env_comes_from_the_configmap_and_secret(
    k8s: dict[str, list[dict[str, Any]]], container: dict[str, Any], configmap: dict[str, Any]
) -> None:
    (secret,) = k8s["Secret"]
    sources = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
    assert sources == [configmap["metadata"]["name"]]
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert refs, "no setting comes from the Secret"
    for ref in refs:
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert not any(looks_secret(k) for k in configmap["data"]), "secrets belong in the Secret"


def test_secret_template_holds_placeholders_only(k8s: dict[str, list[dict[str, Any]]]) -> None:
    (secret,) = k8s["Secret"]
    assert "data" not in secret, "base64 `data` in a template looks like a real secret"
    assert secret["stringData"] and all(v == "REPLACE_ME" for v in secret["stringData"].values())


def test_api_keys_file_is_mounted_read_only_from_the_secret(
    k8s: dict[str, list[dict[str, Any]]],
    deployment: dict[str, Any],
    container: dict[str, Any],
    configmap: dict[str, Any],
) -> None:
    (secret,) = k8s["Secret"]
    path = Path(configmap["data"]["KNOWLEDGE_API_KEYS_FILE"])
    mounts = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    assert mounts and mounts[0].get("readOnly") is True, f"{path.parent} is not a read-only mount"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    source = volumes[mounts[0]["name"]]["secret"]
    assert source["secretName"] == secret["metadata"]["name"]
    items = {i["path"]: i["key"] for i in source.get("items", [])}
    assert items.get(path.name) in secret["stringData"], f"{path.name} is not a key of the Secret"


# ---- safe by default -----------------------------------------------------------------------------


def _with_mounted_keys(env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings from a deployment's environment, with its keys file mounted (a real, valid file)."""
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps([{"name": "ops", "sha256": "0" * 64, "namespaces": ["*"], "roles": ["admin"]}])
    )

    def resolved(value: str) -> str:  # compose: ${VAR:-default} -> default, ${VAR:?message} -> a value
        return INTERPOLATION.sub(lambda m: m[3] if m[2] in (":-", "-") else "set", str(value))

    fields = {
        k.removeprefix("KNOWLEDGE_").lower(): resolved(v)
        for k, v in env.items()
        if k.startswith("KNOWLEDGE_")
    }
    if "api_keys_file" in fields:
        fields["api_keys_file"] = str(keys)
    return Settings(**{k: v for k, v in fields.items() if k in Settings.model_fields})


def test_every_deployment_serves_beyond_loopback_only_with_keys(
    knowledge_env: dict[str, str],
    configmap: dict[str, Any],
    dockerfile: list[tuple[str, str]],
    tmp_path: Path,
) -> None:
    image_env: dict[str, str] = {}
    for word, args in final_stage(dockerfile):
        if word == "ENV":
            image_env.update(assignments(word, args))
    for where, env in (("compose", knowledge_env), ("k8s", configmap["data"]), ("image", image_env)):
        settings = _with_mounted_keys(env, tmp_path)
        assert not is_loopback(settings.http_host), f"{where}: expected to listen beyond loopback"
        assert settings.api_keys_file or settings.api_keys, f"{where} configures no API keys"
        assert not settings.allow_unauthenticated, f"{where} switches the key requirement off"
        check_exposure(settings)  # starts: keys are configured
        with pytest.raises(ValueError, match="without API keys"):
            check_exposure(
                settings.model_copy(update={"api_keys_file": None, "api_keys": None, "auth_required": False})
            )


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = PRODUCTION.read_text()
    missing = [f for f in Settings.model_fields if f"`KNOWLEDGE_{f.upper()}`" not in readme]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_the_readme_profile_table_gives_the_real_defaults() -> None:
    """Each row of the README's profile settings table names a setting and its true default."""
    from knowledge_service.schemas.search import RetrievalSettings

    readme = PRODUCTION.read_text()
    start = readme.index("| setting | default | meaning |", readme.index("## Tune retrieval"))
    table = readme[start:].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|", table, re.MULTILINE))
    defaults = RetrievalSettings().model_dump(exclude_none=True)
    assert set(rows) == set(RetrievalSettings.model_fields), "the table lists every setting once"
    for name, value in defaults.items():
        shown = rows[name].strip("`")
        if isinstance(value, dict):
            assert json.loads(shown) == {k: v for k, v in value.items() if k == "method"}, name
        else:
            expected = value if isinstance(value, str) else json.dumps(value)
            assert shown == expected, f"{name}: README says {shown}, the code {value!r}"
    assert rows["score_threshold"] == "none"
