"""The committed gRPC stubs match what scripts/generate_stubs.py produces from the proto."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "generate_stubs.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_stubs", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_fresh() -> None:
    stale = _load_script().check()
    assert not stale, f"stale stubs {stale}; run: python scripts/generate_stubs.py"


def test_check_detects_an_edit(tmp_path: Path) -> None:
    script = _load_script()
    out = tmp_path / "proto"
    script.generate(out)
    assert script.check(out) == []
    grpc_module = out / "knowledge" / "v1" / "knowledge_pb2_grpc.py"
    grpc_module.write_text(grpc_module.read_text() + "# edited\n")
    (out / "knowledge" / "v1" / "extra.py").write_text("")
    assert script.check(out) == ["knowledge/v1/extra.py", "knowledge/v1/knowledge_pb2_grpc.py"]


def test_generated_import_is_rewritten() -> None:
    from knowledge_client.proto.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc

    assert knowledge_pb2_grpc.knowledge_dot_v1_dot_knowledge__pb2 is knowledge_pb2
    module = knowledge_pb2.SearchRequest.__module__
    assert module == "knowledge_client.proto.knowledge.v1.knowledge_pb2"


def test_stubs_are_written_to_the_public_module() -> None:
    script = _load_script()
    assert (script.PACKAGE, script.OUT_DIR.relative_to(script.ROOT).as_posix()) == (
        "knowledge_client.proto",
        "client/knowledge_client/proto",
    )


def test_the_private_stub_path_is_gone() -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__("knowledge_client._proto")
