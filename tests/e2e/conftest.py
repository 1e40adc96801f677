"""Fixtures of the browser tests: the app on a real HTTP server, and headless Chromium (Debian's
``chromium``, driven by Playwright; never ``playwright install``)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.inbox_browser import ARGS, CHROMIUM, INSTALL, serving


@pytest.fixture
def served(app):
    with serving(app) as origin:
        yield origin


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}; {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[dev]' (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()
