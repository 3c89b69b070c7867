"""Real headless Chromium (Debian's, driven by Playwright) against `dosewise review` started as a
subprocess: every page renders its chart, a review submitted through the form lands in the
database, and with a real OIDC provider on loopback nothing is reachable before login and the
stored reviewer is the logged-in user. Screenshots go to `test-artifacts/browser/`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect

from dosewise.app.review_store import ReviewStore
from tests.app.review_root import ReviewRoot
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]
PAGES = {"cohort": "", "patient_timeline": "patient_timeline", "policy_evaluation": "policy_evaluation",
         "recommendation_review": "recommendation_review"}
CHART = '[data-testid="stPlotlyChart"] .main-svg'

if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dosewise review exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"dosewise review did not answer within {timeout} s:\n{log.read_text()}")


def _start_review(root: Path, db_url: str, log: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSEWISE_", "MLFLOW_TRACKING"))}
    full_env.update({"DOSEWISE_REVIEW_DB_URL": db_url, **env})
    exe = str(Path(sys.executable).with_name("dosewise"))
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "review", "--port", str(port), "--data-root", str(root)],
                                stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
    except AssertionError:
        proc.kill()
        raise
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _settle(page: object) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=90_000)  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=90_000)  # type: ignore[attr-defined]


def _submit_review(page: object, comment: str) -> None:
    page.get_by_text("disagree", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_label("Your reasoning (free text)").fill(comment)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Submit review").click()  # type: ignore[attr-defined]
    page.get_by_text("Review stored (disagree)").wait_for(timeout=60_000)  # type: ignore[attr-defined]


def test_pages_render_and_review_is_stored(browser: object, review_root: ReviewRoot, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    proc, url = _start_review(review_root.root, db_url, tmp_path / "review.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})  # type: ignore[attr-defined]
        for name, path in PAGES.items():
            page.goto(f"{url}/{path}")
            page.wait_for_selector(CHART, timeout=120_000)
            _settle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            assert page.get_by_text("listens on loopback").count() == 1, name
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        _submit_review(page, "Fluids look excessive for this MAP")
        exports = page.locator('[data-testid="stDownloadButton"]')
        expect(exports).to_have_count(2, timeout=60_000)  # CSV and parquet
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / "review_submitted.png"))
        stored = ReviewStore(db_url).read()
        assert len(stored) == 1
        assert stored.iloc[0]["comment"] == "Fluids look excessive for this MAP"
        assert stored.iloc[0]["reviewer"].startswith("local:")
    finally:
        _stop(proc)


def test_oidc_login_guards_pages_and_names_the_reviewer(
    browser: object, review_root: ReviewRoot, tmp_path: Path
) -> None:
    from oidc_provider_mock import run_server_in_thread

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    with run_server_in_thread(port=_free_port()) as provider:
        metadata = f"http://localhost:{provider.server_port}/.well-known/openid-configuration"
        proc, url = _start_review(
            review_root.root, db_url, tmp_path / "review.log", DOSEWISE_OIDC_METADATA_URL=metadata,
            DOSEWISE_OIDC_CLIENT_ID="dosewise-review", DOSEWISE_OIDC_CLIENT_SECRET="test-secret",
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})  # type: ignore[attr-defined]
            page = context.new_page()
            for name, path in PAGES.items():
                page.goto(f"{url}/{path}")
                page.get_by_text("Please log in").wait_for(timeout=90_000)
                _settle(page)
                assert page.locator(CHART).count() == 0, name
                assert page.get_by_text("Stay id").count() == 0, name
            page.screenshot(path=str(ARTIFACTS / "login_required.png"))
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector('input[name="sub"]', timeout=60_000)  # the provider's own form
            page.fill('input[name="sub"]', "dr.oidc@example.org")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_selector(CHART, timeout=120_000)
            _settle(page)
            assert page.get_by_text("dr.oidc@example.org").count() >= 1
            assert page.get_by_label("Reviewer name (local mode)").count() == 0  # never a text box
            page.goto(f"{url}/recommendation_review")
            page.wait_for_selector(CHART, timeout=120_000)
            _settle(page)
            _submit_review(page, "Reviewed after login")
            page.screenshot(path=str(ARTIFACTS / "review_logged_in.png"))
            stored = ReviewStore(db_url).read()
            assert stored["reviewer"].tolist() == ["dr.oidc@example.org"]
        finally:
            _stop(proc)


def test_chemo_pages_render_in_the_browser(browser: object, chemo_root: Path, tmp_path: Path) -> None:
    """Chemotherapy beside sepsis in one data root: the cohort and cycle-timeline charts render, and
    the review form takes a dose in % of planned plus a delay in days (no fluid or vasopressor)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    proc, url = _start_review(chemo_root, db_url, tmp_path / "review.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 2200})  # type: ignore[attr-defined]
        for name, path, title in (("chemo_cohort", "", "RDI distribution"),
                                  ("chemo_timeline", "patient_timeline", "Cycle timeline")):
            page.goto(f"{url}/{path}")
            page.wait_for_selector(CHART, timeout=120_000)
            _settle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            expect(page.locator(CHART).filter(has_text=title).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        page.goto(f"{url}/recommendation_review")
        page.wait_for_selector(CHART, timeout=120_000)
        _settle(page)
        assert page.get_by_label("IV fluid you would give (mL/4h)").count() == 0
        page.get_by_role("spinbutton", name="Dose you would give (% of planned)").fill("80")
        page.get_by_role("spinbutton", name="Delay you would give (days)").fill("7")
        _submit_review(page, "Delay a week for ANC 1.2, then 80 %")
        page.screenshot(path=str(ARTIFACTS / "chemo_review_submitted.png"))
        store = ReviewStore(db_url)
        stored = store.read().iloc[0]
        assert (stored["reviewer_dose_pct_of_planned"], stored["reviewer_delay_days"]) == (80.0, 7)
        assert stored["dataset_name"] == "chemo" and stored["recommended_rdi_fraction"] > 0
        assert pd.isna(stored["reviewer_fluid_ml_4h"]) and store.check_integrity().rows == 1
    finally:
        _stop(proc)


def test_first_screen_after_the_demo_shows_no_error(browser: object, tmp_path: Path) -> None:
    """`dosewise demo` then `dosewise review --data-root <demo out>`: the app opens on the dataset the
    registered policy fits (not the first one listed), and no page shows an error or a traceback."""
    from dosewise.app.demo import SMOKE, run_demo

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    demo = tmp_path / "demo"
    run_demo(demo, quiet=True, overrides=SMOKE)
    proc, url = _start_review(demo, f"sqlite:///{tmp_path / 'reviews.db'}", tmp_path / "review.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})  # type: ignore[attr-defined]
        for name, path in (("demo_first_screen", ""), ("demo_policy_evaluation", "policy_evaluation")):
            page.goto(f"{url}/{path}")
            page.wait_for_selector(CHART, timeout=400_000)  # the first run loads every policy once
            _settle(page)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            assert page.locator('[data-testid="stException"]').count() == 0, name
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, name
        sidebar = page.locator('[data-testid="stSidebar"]')
        # a registered policy and a dataset it fits (the demo registers a sepsis and a chemo policy)
        assert sidebar.get_by_text("does not fit this dataset").count() == 0
        assert sidebar.get_by_text("No policy fits").count() == 0
        assert page.get_by_text("not reliable:").count() >= 1  # the smoke-size OPE says so, no arrow
        assert page.locator('[data-testid="stMetricDelta"]').count() == 0
    finally:
        _stop(proc)
