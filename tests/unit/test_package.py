"""The package surface and its import boundaries."""

from __future__ import annotations

import json
import subprocess
import sys

import shoprec


def test_root_exports_only_the_version() -> None:
    assert shoprec.__all__ == ["__version__"]
    assert isinstance(shoprec.__version__, str)


SERVING_MODULES = [
    "shoprec.http.app",
    "shoprec.serving.search",
    "shoprec.models.bundle",
    "shoprec.models.encoder",
    "shoprec.cli",
]


def test_serving_path_never_imports_torch_or_ray() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in SERVING_MODULES)
        + "from shoprec.settings import Settings\n"
        + "from shoprec.http.app import create_app\n"
        + "create_app(Settings.load(environ={}))\n"
        + "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        + "('torch', 'transformers', 'sentence_transformers', 'ray'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_dependency_owners() -> None:
    """One module owns each external dependency."""
    import pathlib

    src = pathlib.Path(shoprec.__file__).parent
    owners = {
        "faiss": {"retrieval/vector.py"},
        # edge/query.py is the standalone on-device script (copied into edge bundles, runs without shoprec)
        "onnxruntime": {"models/encoder.py", "optimize/quantize.py", "edge/query.py"},
        "bm25s": {"retrieval/lexical.py"},
        "cryptography": {"security/crypto.py"},
        "redis": {"adapters/redis.py"},
        "prometheus_client": {"adapters/prometheus.py"},
        "ray": {"cluster/ray_serve.py"},
    }
    for dep, allowed in owners.items():
        users = {
            p.relative_to(src).as_posix()
            for p in src.rglob("*.py")
            if f"import {dep}" in p.read_text() or f"from {dep}" in p.read_text()
        }
        assert users <= allowed, (dep, users)
    torch_users = {
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if "import torch" in p.read_text() or "from torch" in p.read_text()
    }
    assert all(u.startswith("training/") for u in torch_users), torch_users
