"""`mlops ui`'s status page: served read-only on 127.0.0.1, and shown in a real browser
(Debian's Chromium, headless, driven by Selenium through Debian's chromedriver)."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops.core.config import load_config
from mlops.core.registry import utc_now
from mlops.local.deploy_history import record_deployment
from mlops.local.endpoints import Endpoint, stage_dir, write_endpoint
from mlops.local.registry import LocalRegistry
from mlops.local.status import status_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
DEAD_PID = 2**22 + 1  # above Linux's pid_max: never a live process


@pytest.fixture
def served(registered_home):
    """The status page over a home with version 1 approved, serving staging (its server
    gone: health "down"), one deploy recorded and a monitor report; yields its URL."""
    home, _ = registered_home
    cfg = load_config()
    group = cfg.model_package_group
    LocalRegistry(home, group).approve(1, "fine on the golden set")
    stage_dir(home, "staging").mkdir(parents=True)
    write_endpoint(
        home,
        Endpoint("staging", group, 1, f"{group}-staging", "http://127.0.0.1:9", 9, DEAD_PID,
                 "i-1", "2026-12-07T06:00:00+00:00"),
    )  # fmt: skip
    record_deployment(home, group, "staging", "local", "succeeded", version=1, url="x")
    record_deployment(home, group, "prod", "local", "refused", reason="not live in staging")
    monitor = home / "reports" / "monitor-staging"
    monitor.mkdir(parents=True)
    (monitor / "monitor.json").write_text(
        json.dumps({"status": "ok", "summary": "no drift in 40 rows", "generated_at": utc_now()})
    )
    server = status_server(cfg, home)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url: str, method: str = "GET", host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_page_is_read_only_and_answers_only_this_machine(served):
    url = served
    status, page = fetch(url + "/")
    assert status == 200
    assert "id=version-1><td class=n>1</td><td class=Approved>Approved</td>" in page
    assert "<td class=n>version 1</td><td>2026-12-07T06:00:00+00:00</td>" in page
    assert "<td class=down>down</td>" in page  # its server is gone
    assert "no drift in 40 rows" in page and "not live in staging" in page
    assert fetch(url + "/", "POST")[0] == 405
    assert fetch(url + "/", "DELETE")[0] == 405
    assert fetch(url + "/", host="attacker.example:80")[0] == 421
    status, card = fetch(url + "/cards/1")  # rendered now: today's approval history
    assert status == 200 and "<td>Approved</td>" in card and "fine on the golden set" in card
    assert fetch(url + "/cards/7")[0] == 404
    assert fetch(url + "/../registry.db")[0] == 404


def test_a_port_in_use_is_one_line_and_exit_2(home, capsys):
    import socket

    from mlops.cli import run

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert run(["ui", "--port", str(sock.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "in use" in err and len(err.strip().splitlines()) == 1


def browser(download_dir: Path):
    """Headless Debian Chromium; the flags keep it off the network (the closed network
    here refuses its background connections, which would fill the console)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage", f"--user-data-dir={download_dir}", "--window-size=1280,1400",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_the_status_page_in_a_real_browser(served, tmp_path):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(f"Chromium is not installed: {INSTALL}")
    pytest.importorskip("selenium", reason="selenium (the dev extra): make .venv/.dev")
    from selenium.webdriver.common.by import By

    url = served
    driver = browser(tmp_path / "chromium-profile")
    try:
        driver.get(url + "/")
        assert driver.title == f"{load_config().model_package_group}: models and stages"
        version = driver.find_element(By.ID, "version-1").text
        assert "Approved" in version and "staging" in version
        assert "version 1" in driver.find_element(By.ID, "stage-staging").text
        assert "not deployed" in driver.find_element(By.ID, "stage-prod").text
        driver.save_screenshot(str(tmp_path / "status-page.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []

        driver.find_element(By.LINK_TEXT, "card").click()
        assert driver.title.startswith("Model card:")
        plots = driver.find_elements(By.CSS_SELECTOR, "figure img")
        titles = [p.get_attribute("alt") for p in plots]  # the fixture project's family: xgboost
        assert titles == ["Predicted vs actual (held-out rows)", "Residuals (held-out rows)",
                          "Feature importance"]  # fmt: skip
        # Each inline plot decoded and drawn (a broken data: URI has no natural width).
        assert all(
            driver.execute_script("return arguments[0].naturalWidth", p) > 100 for p in plots
        )
        driver.save_screenshot(str(tmp_path / "model-card.png"))
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()
    assert (tmp_path / "status-page.png").stat().st_size > 10_000
