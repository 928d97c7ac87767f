"""Regenerate the dashboard screenshots in docs/screenshots (README images).

    PYTHONPATH=src python tools/screenshots.py

Starts a real ``assay server`` on a loopback port with the browser tests' data (tests/dashboard/conftest.py)
and photographs the pages in headless Chromium (/usr/bin/chromium), light and dark.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ServerProcess  # noqa: E402
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, _populate  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    from playwright.sync_api import sync_playwright

    srv = ServerProcess(Path(tempfile.mkdtemp(prefix="assay-shots-")) / "home").start()
    try:
        d = _populate(srv)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for scheme in ("light", "dark"):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
                page = ctx.new_page()
                page.set_default_timeout(120_000)
                suffix = "" if scheme == "light" else "-dark"
                page.goto(f"{srv.url}/experiments/{d.single}")
                page.wait_for_selector("body[data-drawn]")
                page.screenshot(path=str(OUT / f"experiment{suffix}.png"))
                if scheme == "dark":
                    ctx.close()
                    continue
                page.goto(f"{srv.url}/")
                page.wait_for_selector("body[data-ready=true]")
                page.screenshot(path=str(OUT / "experiments.png"))
                page.goto(f"{srv.url}/experiments/{d.multi}")
                page.wait_for_selector("body[data-drawn]")
                page.locator("#pareto-panel").screenshot(path=str(OUT / "pareto.png"))
                # the panel's top just below the sticky header
                page.evaluate("window.scrollTo(0, document.getElementById('h-par').getBoundingClientRect().top"
                              " + window.scrollY - 80)")
                page.locator("#plot-parcoords").locator("xpath=..").screenshot(path=str(OUT / "parcoords.png"))
                page.goto(f"{srv.url}/projects/{d.project}")
                page.wait_for_selector("body[data-ready=true]")
                page.screenshot(path=str(OUT / "runs.png"))
                page.goto(f"{srv.url}/runs/{d.runs[0]}")
                page.wait_for_selector("body[data-ready=true]")
                page.wait_for_function("(document.querySelector('img.run-image') || {}).naturalWidth > 0")
                page.screenshot(path=str(OUT / "run.png"), full_page=True)
                ctx.close()
            browser.close()
    finally:
        srv.stop()
    print("\n".join(str(p.relative_to(ROOT)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
