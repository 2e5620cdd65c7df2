"""Screenshots of the built-in pages, for docs/ and the README: the dashboard (every chart
drawn, live row connected), Swagger UI and ReDoc, taken in headless Chromium.

Against the Quick start's API (sample data; `./dev up` prints the keys):

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000 --key dev-read-key

writes docs/dashboard.png, docs/api-docs.png and docs/api-reference.png.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent.parent / "docs"


def wait_until(page: Page, expression: str, timeout: float = 60) -> None:
    """Poll from here (the pages' Content-Security-Policy forbids in-page string evaluation)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise SystemExit(f"not true after {timeout} s: {expression}")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the API (default %(default)s)")
    parser.add_argument("--key", required=True, help="an API key with the read scope")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNG files (default docs/)")
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="the Chromium executable")
    args = parser.parse_args(argv)
    if not args.chromium:
        print("Chromium is needed (Debian package chromium)", file=sys.stderr)
        return 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{args.url}/dashboard")
        page.fill("#key-input", args.key)
        page.click("#key-form button[type=submit]")
        wait_until(page, "() => Number(document.body.dataset.loaded || 0) > 0")
        page.wait_for_selector('#live-status[data-state="live"]', timeout=20_000)
        time.sleep(1.5)  # the charts' entry animation
        page.screenshot(path=str(args.out / "dashboard.png"), full_page=True)
        print(f"wrote {args.out / 'dashboard.png'}", file=sys.stderr)
        page.goto(f"{args.url}/docs")
        wait_until(page, "() => document.querySelectorAll('.opblock').length > 0")
        page.screenshot(path=str(args.out / "api-docs.png"))
        page.goto(f"{args.url}/redoc")
        wait_until(page, "() => document.querySelectorAll('[data-section-id*=\"operation/\"]').length > 0")
        time.sleep(0.5)
        page.screenshot(path=str(args.out / "api-reference.png"))
        print(f"wrote {args.out / 'api-docs.png'} and {args.out / 'api-reference.png'}", file=sys.stderr)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
