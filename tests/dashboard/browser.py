"""Debian's Chromium driven by Playwright, for the dashboard's browser tests.

Playwright never downloads a browser here: it drives /usr/bin/chromium (`scripts/browser.sh`
installs it from Debian's packages) with a fresh profile. Screenshots go to
$FLOCK_ARTIFACTS_DIR/dashboard when that is set, else into pytest's temporary directory."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("FLOCK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}


@contextmanager
def chromium() -> Iterator:
    """A Chromium context with a profile of its own, deleted afterwards."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="flock-chromium-") as profile, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport=VIEWPORT,
            locale="en-US", timezone_id="UTC")
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


def screenshots_dir(base: Path) -> Path:
    """Where screenshots are kept: $FLOCK_ARTIFACTS_DIR/dashboard, else test-artifacts/dashboard
    in the checkout (ignored by git, kept after the run for a look)."""
    root = os.environ.get("FLOCK_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "test-artifacts"
    path = Path(root) / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"
