"""Generate reports through the API and render their PDF pages to PNG, to look at them and
for docs/report-sample.png.

Against the Quick start's API (sample data; `./dev up` prints the keys):

    ./dev run scripts/report_sample.py --url http://127.0.0.1:8000 --key dev-read-key

asks for the monthly business review (PDF and XLSX) of last month, waits for the worker,
downloads the files into --out (default data/report-samples/), renders every PDF page to
PNG with pdftoppm (poppler-utils), and copies page 1 to docs/report-sample.png.
`--type` (repeatable) and `--parameters` pick other reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def generate(client: httpx.Client, report_type: str, fmt: str, parameters: dict, out: Path) -> Path:
    """Ask for one report, wait until it is completed, download it; the file's path."""
    r = client.post(
        "/api/v1/reports/generate", json={"report_type": report_type, "format": fmt, "parameters": parameters}
    )
    r.raise_for_status()
    status_url = r.json()["status_url"]
    deadline = time.monotonic() + 300
    while True:
        status = client.get(status_url).json()
        if status["status"] == "completed":
            break
        if status["status"] == "failed" or time.monotonic() > deadline:
            raise SystemExit(f"{report_type} {fmt}: {status}")
        print(f"  {report_type} {fmt}: {status['status']} ...", flush=True)
        time.sleep(1)
    path = out / f"{report_type}.{fmt}"
    path.write_bytes(client.get(f"{status_url}/download").content)
    print(f"  {report_type} {fmt}: {path} ({path.stat().st_size:,} bytes)")
    return path


def pages_to_png(pdf: Path, dpi: int) -> list[Path]:
    """Every page of `pdf` as `<stem>-<n>.png` beside it (pdftoppm)."""
    if not shutil.which("pdftoppm"):
        raise SystemExit("pdftoppm not found: apt-get install poppler-utils")
    for old in pdf.parent.glob(f"{pdf.stem}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(pdf.parent / pdf.stem)], check=True)
    return sorted(pdf.parent.glob(f"{pdf.stem}-*.png"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the API (default %(default)s)")
    parser.add_argument("--key", required=True, help="an API key with the reports scope")
    parser.add_argument("--type", action="append", dest="types", help="report type (default monthly_business_review)")
    parser.add_argument("--parameters", default="{}", help='report parameters as JSON, e.g. \'{"tz": "UTC"}\'')
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "report-samples", help="folder for the files")
    parser.add_argument("--dpi", type=int, default=80, help="PNG resolution (default %(default)s)")
    parser.add_argument("--no-docs", action="store_true", help="do not replace docs/report-sample.png")
    args = parser.parse_args(argv)
    types = args.types or ["monthly_business_review"]
    args.out.mkdir(parents=True, exist_ok=True)
    parameters = json.loads(args.parameters)
    with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}, timeout=60) as client:
        for report_type in types:
            pdf = generate(client, report_type, "pdf", parameters, args.out)
            generate(client, report_type, "xlsx", parameters, args.out)
            pages = pages_to_png(pdf, args.dpi)
            print(f"  {report_type}: {len(pages)} pages -> {', '.join(p.name for p in pages)}")
            if report_type == types[0] and not args.no_docs:
                shutil.copyfile(pages[0], ROOT / "docs" / "report-sample.png")
                print(f"  page 1 -> {ROOT / 'docs' / 'report-sample.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
