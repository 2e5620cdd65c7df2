"""The pages' assets: the vendored libraries are the files scripts/vendor_assets.py recorded
(with their licences), every asset a page names is served, and nothing is loaded from
elsewhere (the pages also forbid it with their Content-Security-Policy)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from analytics_service.app import create_app
from analytics_service.config import Settings
from analytics_service.pages import STATIC_DIR, VENDOR_MANIFEST

PAGES = ["/dashboard", "/docs", "/redoc"]
# src=, href= and CSS url() values.
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture(scope="module")
def pages() -> TestClient:
    return TestClient(create_app(Settings(api_keys="[]")))  # no lifespan: the pages need no node


def test_the_vendored_files_are_the_recorded_ones_with_their_licences():
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    assert set(manifest) == {"echarts", "swagger-ui-dist", "redoc"}
    for package, entry in manifest.items():
        folder = VENDOR_MANIFEST.parent / entry["directory"]
        assert entry["directory"] == f"{package}-{entry['version']}"
        assert "LICENSE" in entry["files"], package
        on_disk = {p.name for p in folder.iterdir()}
        assert on_disk == set(entry["files"]), package
        for name, digest in entry["files"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{package}/{name}"


@pytest.mark.parametrize("path", PAGES)
def test_every_asset_a_page_names_is_served_from_here(pages, path):
    response = pages.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assets = [a or b for a, b in ASSET.findall(response.text)]
    assert assets, path
    for asset in assets:
        assert asset.startswith("/"), f"{path} names {asset}, which is not served here"
        assert pages.get(asset).status_code == 200, asset


def test_the_dashboards_own_files_load_nothing_from_elsewhere():
    own = [p for p in (STATIC_DIR / "dashboard").iterdir() if p.suffix in (".html", ".js", ".css", ".svg")]
    assert {p.name for p in own} >= {"index.html", "dashboard.js", "dashboard.css"}
    for path in own:
        text = path.read_text()
        remote = re.findall(r"""(?:src|href)\s*=\s*["']https?:|url\(\s*["']?https?:|fetch\(\s*["'`]https?:""", text)
        assert not remote, f"{path.name}: {remote}"
