"""Fixtures for the dashboard: an admin (a Django staff user), a signed-in test client, and a
signed-in HTTP session against the live ASGI server."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from django.test import Client

PASSWORD = "correct horse battery staple"
PAGES = ("/", "/nodes", "/models", "/shards", "/tokens", "/usage", "/audit", "/settings",
         "/connect", "/playground", "/docs/cluster")


@pytest.fixture(autouse=True)
def _fresh_chips():
    from flocksite.dashboard import layout

    layout._chips.update(value=None, at=0.0)
    yield
    layout._chips.update(value=None, at=0.0)


@pytest.fixture
def admin_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def admin(admin_user) -> Client:
    """The test client, signed in as an admin, browsing (it accepts HTML)."""
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(admin_user)
    return client


@dataclass
class Session:
    """A signed-in HTTP session against the live server, as a browser would hold it."""

    http: httpx.Client
    csrf: str

    def post(self, path: str, **kwargs) -> httpx.Response:
        headers = {"x-csrftoken": self.csrf, "accept": "application/json",
                   "referer": str(self.http.base_url), **kwargs.pop("headers", {})}
        return self.http.post(path, headers=headers, **kwargs)


def sign_in(base_url: str, username: str = "ada", password: str = PASSWORD) -> Session:
    http = httpx.Client(base_url=base_url, timeout=30, trust_env=False)
    http.get("/login")
    csrf = http.cookies["csrftoken"]
    answer = http.post("/login", data={"username": username, "password": password,
                                       "csrfmiddlewaretoken": csrf},
                       headers={"referer": base_url + "/login"})
    assert answer.status_code == 302, answer.text[:500]
    return Session(http, http.cookies["csrftoken"])


@pytest.fixture
def live_admin(gateway, admin_user) -> Session:
    session = sign_in(gateway.url)
    yield session
    session.http.close()
