"""``pip install ./client`` (no extras) into a clean venv pulls nothing heavy and imports cleanly.

One slow test (a venv and a few wheels from pip's configured indexes): it proves what a crew gets.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ["torch", "qdrant_client", "qdrant_edge", "sentence_transformers", "crewai"]
HEAVY_DISTRIBUTIONS = [
    "torch",
    "qdrant-client",
    "qdrant-edge-py",
    "sentence-transformers",
    "crewai",
    "transformers",
]

PROBE = f"""
import importlib.metadata as md, importlib.util, json, sys
import knowledge_client as kc
kc.KnowledgeClient("127.0.0.1:1"); kc.KnowledgeClient("127.0.0.1:1", transport="http")
kc.AsyncKnowledgeClient("127.0.0.1:1")
try:
    import knowledge_client.crewai
    tool_error = None
except ImportError as exc:
    tool_error = str(exc)
print(json.dumps({{
    "loaded": [m for m in {HEAVY_MODULES!r} if m in sys.modules],
    "findable": [m for m in {HEAVY_MODULES!r} if importlib.util.find_spec(m) is not None],
    "installed": sorted(d.metadata["Name"].lower() for d in md.distributions()),
    "client": kc.__file__, "tool_error": tool_error, "prefix": sys.prefix,
}}))
"""


def _env() -> dict[str, str]:
    """This process's environment with the real HOME (conftest swaps it for CrewAI's sake), so
    pip finds its configuration (find-links, local indexes), and without this venv's variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_client_installs_and_imports_without_heavy_dependencies(tmp_path: Path):
    source = tmp_path / "client"
    shutil.copytree(
        REPO / "client", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()

    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    probe = subprocess.run(
        [str(python), "-c", PROBE], env=_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["prefix"] == str(venv) and found["client"].startswith(str(venv))
    assert found["loaded"] == [] and found["findable"] == []
    assert not set(HEAVY_DISTRIBUTIONS) & set(found["installed"]), found["installed"]
    assert {"knowledge-client", "grpcio", "protobuf", "httpx", "pydantic", "tenacity"} <= set(
        found["installed"]
    )
    assert 'pip install "knowledge-client[crewai]"' in (found["tool_error"] or "")
