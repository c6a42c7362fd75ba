"""Dashboard URLs, mounted at the site root after the API routes (flocksite/urls.py); `/`
itself is flocksite.dashboard.root."""

from __future__ import annotations

from django.urls import path

from flocksite.dashboard import (
    activity,
    auth,
    connect,
    docs,
    files,
    live,
    models_page,
    nodes,
    playground,
    root,
    settings_page,
    shards,
    tokens,
)

app_name = "dashboard"


urlpatterns = [
    path("", root.root, name="home"),  # served first by flocksite/urls.py; named here
    path("login", auth.LoginView.as_view(), name="login"),
    path("logout", auth.LogoutView.as_view(), name="logout"),
    path("live", live.live, name="live"),
    path("nodes", nodes.nodes_page, name="nodes"),
    path("nodes/join-token", nodes.join_token_create, name="join_token"),
    path("nodes/<int:node_id>/<str:action>", nodes.node_action, name="node_action"),
    path("models", models_page.models_page, name="models"),
    path("models/install", models_page.model_install, name="model_install"),
    path("models/remove", models_page.model_remove, name="model_remove"),
    path("shards", shards.shards_page, name="shards"),
    path("shards/create", shards.shard_create, name="shard_create"),
    path("shards/remove", shards.shard_remove, name="shard_remove"),
    path("shards/<path:model>/logs", shards.shard_logs, name="shard_logs"),
    path("tokens", tokens.tokens_page, name="tokens"),
    path("tokens/create", tokens.token_create, name="token_create"),
    path("tokens/invite", tokens.invite, name="invite"),
    path("tokens/<int:key_id>/revoke", tokens.token_revoke, name="token_revoke"),
    path("usage", activity.usage_page, name="usage"),
    path("audit", activity.audit_page, name="audit"),
    path("settings", settings_page.settings_page, name="settings"),
    path("connect", connect.connect_page, name="connect"),
    path("connect/snippet", connect.connect_snippet, name="connect_snippet"),
    path("connect/key", connect.connect_key, name="connect_key"),
    path("connect/test", connect.connect_test, name="connect_test"),
    path("playground", playground.playground_page, name="playground"),
    path("playground/chat", playground.playground_chat, name="playground_chat"),
    path("docs/<str:name>", docs.doc_page, name="doc"),
    path("static/<path:path>", files.static_file, name="static"),
]
