"""The pages ship in the package: every file under http/static is package data, and nothing
in them loads from another origin (no CDN)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from shoprec.http.pages import STATIC_DIR

ROOT = Path(__file__).resolve().parents[3]


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["shoprec.http"]
    files = sorted(p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())
    assert {"static/index.html", "static/ops.html", "static/storefront.js", "static/ops.js"} <= set(files)
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_the_pages_load_nothing_from_elsewhere() -> None:
    remote = re.compile(r"""(src|href)\s*=\s*["'](https?:)?//|@import\s+url\(\s*["']?https?:|from\s+["']https?:""")
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in {".html", ".css", ".js"}:
            assert not remote.search(path.read_text()), path.name
    for page in ("index.html", "ops.html"):
        html = (STATIC_DIR / page).read_text()
        assert re.search(r'<script type="module" src="/static/\w+\.js">', html), page
