"""Fetch the front-end assets the service serves (charting library, Swagger UI, ReDoc) from npm
at pinned versions, into analytics_service/static/vendor/<package>-<version>/ with their
licence files, and record each file's SHA-256 in analytics_service/static/vendor/assets.json.

The files are committed: the service never loads anything from a CDN at run time, so the
dashboard and the API docs work offline. Run this only to change a version:

    .venv/bin/python scripts/vendor_assets.py

(needs `npm`; tests/test_static_assets.py checks the committed files against assets.json.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "analytics_service" / "static" / "vendor"

# package -> (version, files inside the package to keep, licence files)
PACKAGES: dict[str, tuple[str, list[str], list[str]]] = {
    "echarts": ("6.1.0", ["dist/echarts.min.js"], ["LICENSE", "NOTICE", "licenses/LICENSE-d3"]),
    "swagger-ui-dist": (
        "5.35.0",
        ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"],
        ["LICENSE", "NOTICE"],
    ),
    "redoc": ("2.5.4", ["bundles/redoc.standalone.js"], ["LICENSE"]),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(package: str, version: str, keep: list[str], dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"npm pack {package}@{version}", file=sys.stderr)
        out = subprocess.run(
            ["npm", "pack", f"{package}@{version}", "--pack-destination", tmp, "--silent"],
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            for name in keep:
                member = tar.extractfile(f"package/{name}")
                if member is None:
                    raise SystemExit(f"{package}@{version} has no {name}")
                target = dest / Path(name).name
                target.write_bytes(member.read())


def main() -> int:
    manifest: dict[str, dict[str, object]] = {}
    for package, (version, files, licences) in PACKAGES.items():
        dest = VENDOR / f"{package}-{version}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        fetch(package, version, files + licences, dest)
        manifest[package] = {
            "version": version,
            "directory": dest.name,
            "files": {p.name: sha256(p) for p in sorted(dest.iterdir())},
        }
    (VENDOR / "assets.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {VENDOR / 'assets.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
