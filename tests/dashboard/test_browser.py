"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real ASGI
server, so websockets and streamed answers work as they do in production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from accounts.models import ApiKey
from cluster.models import Node, NodeRole, Placement
from cluster.services import local_node_name
from tests.catalog.conftest import RTX_4090_BOX
from tests.dashboard.browser import CHROMIUM, chromium, screenshots_dir, slug
from tests.dashboard.conftest import PASSWORD
from tests.fakes.ollama_pull import FakeOllamaPull

pytest.importorskip("playwright", reason="pip install -r requirements-dev.txt")

# The worker with the pulling engine is named after this machine, so its pulls run here with or
# without Redis (catalog.services.runs_here).
BOX = local_node_name()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: run scripts/browser.sh")
    # Playwright's sync API keeps an event loop in this thread, which Django takes for async
    # code calling the ORM; the test bodies and fixtures here are plain sync code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with chromium() as context:
            yield context


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = screenshots_dir(tmp_path_factory.getbasetemp())
    print(f"\ndashboard screenshots: {path}")
    return path


@dataclass
class Site:
    url: str
    gateway: object
    ollama: FakeOllamaPull
    shots: Path

    def shoot(self, page, name: str) -> Path:
        path = self.shots / f"{slug(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def site(gateway, admin_user, shots) -> Iterator[Site]:
    """The gateway with two nodes: the leader (an OpenAI-compatible fake engine) and a worker
    whose engine is a fake Ollama that pulls."""
    ollama = FakeOllamaPull().start()
    ollama.pull_delay = 0.12
    Node.objects.create(name=BOX, role=NodeRole.WORKER, engine="ollama",
                        engine_endpoint=ollama.url, hardware=RTX_4090_BOX,
                        address="http://10.0.0.7:8090")
    Node.objects.filter(name="leader").update(hardware=RTX_4090_BOX)
    # What the nodes' heartbeats would have reported.
    Node.objects.filter(name=BOX).update(last_heartbeat_at=timezone.now())
    for node, model in (("leader", "fake-model"), (BOX, "llama3.2:1b")):
        Placement.objects.create(node=Node.objects.get(name=node), model=model)
    yield Site(gateway.url, gateway, ollama, shots)
    ollama.stop()


@pytest.fixture
def page(browser, site):
    browser.clear_cookies()
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(site.url + "/")
    tab.wait_for_url("**/login?next=/")
    tab.fill("input[name=username]", "ada")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(site.url + "/")
    yield tab
    tab.close()
    assert not errors, f"JavaScript errors: {errors}"


def _chat(site: Site, n: int) -> None:
    for _ in range(n):
        httpx.post(site.gateway.v1 + "/chat/completions", headers=site.gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]},
                   timeout=10).raise_for_status()
    site.gateway.usage_records()  # flushes the usage buffer


def test_the_home_page_shows_the_cluster_live(site, page):
    _chat(site, 3)
    page.reload()
    page.wait_for_selector("[data-chip=engine]:has-text('engine reachable')")
    assert page.locator("body").get_attribute("data-live") == "websocket"
    assert page.inner_text("[data-chip=nodes]") == "2/2 nodes"
    assert page.inner_text("[data-kpi=requests]") == "3"
    assert page.inner_text("[data-kpi=top-model]") == "fake-model"
    assert f"curl {site.url}/v1/chat/completions" in page.inner_text("#curl-example")
    assert page.locator(".activity .badge.ok").count() == 3
    _chat(site, 2)  # arrives without a reload
    page.wait_for_selector("[data-kpi=requests]:text-is('5')", timeout=10_000)
    site.shoot(page, "home")


def test_a_key_is_created_shown_once_and_revoked(site, page):
    page.goto(site.url + "/tokens")
    page.fill("#create-key input[name=name]", "ci-bot")
    page.fill("#create-key input[name=daily_token_quota]", "50000")
    page.click("#create-key button[type=submit]")
    dialog = page.locator("#issued-dialog")
    dialog.wait_for(state="visible")
    plaintext = page.inner_text("#issued-key").strip()
    assert plaintext.startswith("sk-flock-")
    site.shoot(page, "tokens-key-created")
    page.click("#issued-dialog [data-close-dialog]")
    page.goto(site.url + "/tokens")
    assert plaintext not in page.content()  # shown once, never again
    row = page.locator("#keys-table tr[data-key-name=ci-bot]")
    assert row.get_attribute("data-status") == "active"
    row.locator("button:has-text('Revoke')").click()
    page.click("#confirm-dialog [data-confirm-ok]")
    page.wait_for_selector(".toast:has-text('Revoked ci-bot')")
    page.wait_for_selector("#keys-table tr[data-key-name=ci-bot][data-status=revoked]")
    assert ApiKey.objects.get(name="ci-bot").revoked_at is not None
    site.shoot(page, "tokens")


def test_installing_from_the_catalog_shows_progress_until_ready(site, page):
    page.goto(site.url + "/models")
    page.fill("#catalog-filter input[name=q]", "qwen3 8b")
    page.wait_for_function("document.querySelectorAll('#catalog-table tr[data-catalog-id]').length < 5")
    assert "q=qwen3+8b" in page.url
    page.select_option("#install-node", BOX)
    page.click("#catalog-table tr[data-catalog-id=qwen3-8b] button:has-text('Install')")
    page.wait_for_selector(f".toast:has-text('Installing qwen3-8b on {BOX}')")
    row = "#installed-table tr[data-model=qwen3-8b]"
    seen: list[int] = []
    shot = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = page.query_selector(row + " [data-percent]")
        if found:
            seen.append(int(found.inner_text().rstrip("%")))
            if 0 < seen[-1] < 100 and not shot:
                site.shoot(page, "models-pulling")
                shot = True
        if page.query_selector(row + "[data-state=ready]"):
            break
        time.sleep(0.1)
    assert page.inner_text(row + " [data-percent]") == "100%"
    assert any(0 < p < 100 for p in seen), seen  # watched it move, not just jump to the end
    assert seen == sorted(seen)
    page.wait_for_selector(f".toast:has-text('qwen3-8b is ready on {BOX}')")
    page.click("#catalog-filter input[name=hide_installed]")
    page.wait_for_selector("#catalog-table tr[data-catalog-id=qwen3-8b]", state="detached")
    site.shoot(page, "models")


def test_the_playground_streams_the_answer_in(site, page):
    script = site.gateway.engine.script
    script.text = "Flocks of small models answer quickly when they share the work"
    script.token_delay = 0.08
    page.goto(site.url + "/playground")
    page.select_option("#playground-model", "fake-model")
    page.fill("#playground-input", "Say something about flocks")
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").last
    partial = []
    deadline = time.monotonic() + 20
    while answer.get_attribute("data-done") != "1" and time.monotonic() < deadline:
        text = answer.inner_text()
        if text and text != script.text:
            if len(partial) == 3:
                site.shoot(page, "playground-streaming")
            partial.append(text)
        time.sleep(0.05)
    assert answer.inner_text() == script.text
    assert len(set(partial)) >= 3, partial  # tokens arrived one after another
    assert page.inner_text(".message.user") == "Say something about flocks"
    assert "First token after" in page.inner_text("#playground-stats")
    site.shoot(page, "playground")
    record = site.gateway.usage_records()[-1]
    assert (record.key_name, record.model, record.outcome) == ("dashboard:ada", "fake-model", "ok")


def test_adding_a_worker_shows_the_join_command(site, page):
    page.goto(site.url + "/nodes")
    assert page.locator(f"#nodes-table tr[data-node='{BOX}']").count() == 1
    page.click("#add-worker")
    page.locator("#worker-dialog").wait_for(state="visible")
    join = page.inner_text("#worker-join")  # after the leader's DATABASE_URL/REDIS_URL, if set
    command = join.splitlines()[-1]
    assert command.startswith("python manage.py join 'http://") and "?token=flock-join-" in command
    install = page.inner_text("#worker-install")
    assert "make setup" in install and command.split("?token=")[1] in install
    site.shoot(page, "nodes-add-worker")
    page.click("#worker-dialog [data-close-dialog]")
    page.locator(f"#nodes-table tr[data-node='{BOX}'] button:has-text('Drain')").click()
    page.click("#confirm-dialog [data-confirm-ok]")
    page.wait_for_selector(f"#nodes-table tr[data-node='{BOX}'][data-state=draining]")
    site.shoot(page, "nodes")


def test_connect_fills_a_new_key_into_the_snippet_and_tests_it(site, page):
    page.goto(site.url + "/connect")
    page.click("label.client:has-text('OpenAI SDK (Python)')")
    page.wait_for_selector("[data-snippet-client=openai-sdk]")
    page.select_option("#connect-model", "fake-model")
    page.click("#connect-create-key")
    page.locator("#connect-key-dialog").wait_for(state="visible")
    token = page.inner_text("#connect-new-key")
    page.click("#connect-key-dialog [data-close-dialog]")
    page.wait_for_selector(f"#connect-snippet pre:has-text('{token}')")
    page.click("#connect-test")
    page.wait_for_selector("#connect-result.ok:has-text('Connected')")
    assert "Hello from the fake engine" in page.inner_text("#connect-result")
    site.shoot(page, "connect")


def test_live_updates_fall_back_to_polling_without_a_websocket(site, page):
    page.route_web_socket("**/ws/live", lambda socket: socket.close())
    page.goto(site.url + "/nodes")
    page.wait_for_selector("body[data-live=polling]", timeout=20_000)
    Node.objects.create(name="late-worker", role=NodeRole.WORKER, engine="ollama",
                        engine_endpoint=site.ollama.url)
    page.wait_for_selector("#nodes-table tr[data-node=late-worker]", timeout=12_000)


@pytest.mark.parametrize("path", ["/usage", "/audit", "/settings", "/shards", "/models",
                                  "/tokens", "/nodes", "/connect", "/playground", "/"])
def test_every_page_renders_in_the_browser(site, page, path):
    _chat(site, 2)
    page.goto(site.url + path)
    page.wait_for_selector("[data-chip=engine]")
    assert page.locator("main h1").count() == 1
    site.shoot(page, "page" + (path if path != "/" else "/home"))
