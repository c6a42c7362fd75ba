"""`manage.py join URL?token=T`: run this machine as a worker of the cluster at URL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cluster import agent, embedded, processes, services
from cluster.console import Console
from cluster.joining import JoinUrlError, parse_join_url
from cluster.worker import (
    HeartbeatLoop,
    Identity,
    LeaderClient,
    LeaderRefused,
    LeaderRejected,
    LeaderUnavailable,
    register,
)
from flocksite.celery import node_queue
from flocksite.config import ENGINES, ConfigError, parse_listen

AGENT_READY_TIMEOUT = 60.0
HARDWARE_REFRESH_BEATS = 12  # GPUs are asked about once a minute, RAM every beat


class Command(BaseCommand):
    help = (
        "Join the cluster whose leader printed URL (`manage.py token create --node` there): "
        "register this machine as a worker, keep its node key in $FLOCK_DATA_DIR/node.json "
        "(mode 0600), serve the worker agent through which the leader reaches this machine's "
        "engine (which stays on 127.0.0.1), send a heartbeat every 5 s, and, with REDIS_URL "
        "set, run a Celery worker on this node's queue. Run it again with the same data dir, "
        "with or without URL, to be the same node."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("url", nargs="?", default="",
                            help="http://LEADER:8080?token=T (omit to rejoin as the saved node)")
        parser.add_argument("--name", help="node name (default: the saved one, else hostname)")
        parser.add_argument("--advertise", metavar="HOST",
                            help="address the leader uses to reach this machine (default: the "
                                 "--listen host, else the interface that routes to the leader)")
        parser.add_argument("--listen", metavar="HOST:PORT", default=f":{agent.DEFAULT_AGENT_PORT}",
                            help="where the worker agent listens (default: %(default)s)")
        parser.add_argument("--engine", choices=ENGINES,
                            help="engine kind (default: FLOCK_ENGINE, else whichever answers on "
                                 "its default port)")
        parser.add_argument("--engine-endpoint", metavar="URL",
                            help="the engine's local URL (default: FLOCK_<ENGINE>_ENDPOINT)")
        parser.add_argument("--no-celery", action="store_true",
                            help="do not run a Celery worker even when REDIS_URL is set")

    def handle(self, *args, **opts) -> None:
        self.console = Console(self.stdout)
        self.cfg = settings.FLOCK
        self.children: dict[str, subprocess.Popen | None] = {"agent": None, "celery": None}
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                          signal.SIGTERM)}
        try:
            self._prepare(opts)
            self._join(stop)
            if stop.is_set():
                return
            self._start_agent()
            if self.cfg.redis_url and not opts["no_celery"]:
                self._start_celery()
            self._print_ready()
            self.loop.run(stop)
            self.console.line("Stopping the worker...")
        except (LeaderRefused, LeaderRejected) as exc:
            raise CommandError(f"the leader refused this node: {exc}. Ask for a new join token "
                               "(`manage.py token create --node` on the leader) and run join "
                               "again.") from None
        finally:
            for name in ("celery", "agent"):
                processes.stop(self.children[name])
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- setup -----------------------------------------------------------------------------------

    def _prepare(self, opts: dict) -> None:
        saved = Identity.load(self.cfg.data_dir)
        try:
            leader, self.token = parse_join_url(opts["url"]) if opts["url"] else ("", "")
            host, self.port = parse_listen(opts["listen"], "--listen")
        except (JoinUrlError, ConfigError) as exc:
            raise CommandError(str(exc)) from None
        if not leader:
            if saved is None:
                raise CommandError("give the leader's URL: manage.py join "
                                   "'http://LEADER:8080?token=T' (from `manage.py token create "
                                   "--node` on the leader)")
            leader = saved.leader
        self.identity = saved if saved is not None and saved.leader == leader else None
        self.listen_host = host
        self.client = LeaderClient(leader)
        self.kind, self.endpoint = self._engine(opts)
        self.engine_key = {"vllm": self.cfg.vllm_api_key,
                           "anthropic": getattr(self.cfg, "anthropic_api_key", "")}.get(self.kind, "")
        advertise = self._advertise(opts["advertise"], host, leader)
        self.agent_url = f"http://{agent.url_host(advertise)}:{self.port}"
        self.name = opts["name"] or (self.identity.name if self.identity else
                                     services.local_node_name())
        self.hardware = services.hardware_detect()
        self.beats = 0

    def _engine(self, opts: dict) -> tuple[str, str]:
        kind = opts["engine"] or self.cfg.engine
        if kind:
            return kind, (opts["engine_endpoint"] or self.cfg.endpoints[kind]).rstrip("/")
        if opts["engine_endpoint"]:
            raise CommandError("--engine-endpoint needs --engine KIND")
        found = services.engine_detect(self.cfg)
        if found is None:
            self.console.warn("no engine answers on this machine's default ports; joining "
                              "anyway (start one, or pass --engine and --engine-endpoint)")
            return "", ""
        return found

    def _advertise(self, wanted: str | None, listen_host: str, leader: str) -> str:
        try:
            if wanted:
                return agent.check_advertised(wanted)
            if listen_host not in agent.UNSPECIFIED:
                return agent.check_advertised(listen_host)
        except agent.AddressError as exc:
            raise CommandError(str(exc)) from None
        parts = urlsplit(leader)
        found = agent.route_source(parts.hostname or "", parts.port or 80)
        if not found:
            raise CommandError(f"cannot tell which address {leader} can reach this machine "
                               "at; pass --advertise HOST")
        if agent.is_loopback(found) and not agent.is_loopback(parts.hostname or ""):
            raise CommandError(f"the route to {leader} leaves through {found}; pass "
                               "--advertise HOST with this machine's cluster address")
        return found

    def _report(self) -> dict:
        return {"name": self.name, "agent_url": self.agent_url, "engine": self.kind,
                "engine_endpoint": self.endpoint, "hardware": self.hardware,
                "llama_cpp_build": self._llama_build()}

    def _llama_build(self) -> str:
        if self.kind != "llamacpp":
            return ""
        try:
            props = httpx.get(self.endpoint + "/props", timeout=2, trust_env=False).json()
            if props.get("build_info"):
                return str(props["build_info"])[:80]
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        return embedded.build_label() if embedded.packages_installed() else ""

    def _join(self, stop: threading.Event) -> None:
        delay = 1.0
        while True:
            try:
                identity = register(self.client, self._report(), identity=self.identity,
                                    token=self.token)
                break
            except LeaderUnavailable as exc:
                if self.identity is None:
                    raise CommandError(f"{exc}; is the leader running (`manage.py up`)?") from None
                self.console.warn(f"{exc}; retrying in {delay:.0f} s")
                if stop.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
        path = identity.save(self.cfg.data_dir)
        rejoined = self.identity is not None and self.identity.node_id == identity.node_id
        self.identity = identity
        self.console.ok(f"{'registered again' if rejoined else 'joined'} {self.client.base_url} "
                        f"as node {identity.node_id} ({identity.name}); identity in {path}")
        self.loop = HeartbeatLoop(self.client, identity, beat=self._beat,
                                  reregister=self._reregister)

    def _reregister(self) -> Identity:
        before = self.identity
        identity = register(self.client, self._report(), identity=before, token="")
        identity.save(self.cfg.data_dir)
        self.identity = self.loop.identity = identity
        if before is None or identity.agent_secret != before.agent_secret:
            processes.stop(self.children["agent"])
            self._start_agent()  # it must accept the new secret
        return identity

    @property
    def _me(self) -> Identity:
        assert self.identity is not None, "registered before anything needs the identity"
        return self.identity

    # --- children --------------------------------------------------------------------------------

    def _logs(self) -> Path:
        path = self.cfg.data_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start_agent(self) -> None:
        env = services.gateway_env(self.cfg)
        env.update({"DJANGO_SETTINGS_MODULE": "flocksite.settings_agent",
                    "FLOCK_AGENT_NODE": self.name, "FLOCK_AGENT_ENGINE": self.kind,
                    "FLOCK_AGENT_ENGINE_ENDPOINT": self.endpoint,
                    "FLOCK_AGENT_ENGINE_KEY": self.engine_key,
                    "FLOCK_AGENT_SECRET_SHA256": agent.secret_digest(self._me.agent_secret)})
        argv = [sys.executable, "-m", "daphne", "-b", self.listen_host, "-p", str(self.port),
                "-v", "0", "flocksite.asgi_agent:application"]
        log_path = self._logs() / "agent.log"
        proc = processes.spawn(argv, env=env, cwd=embedded.PROJECT_ROOT, log_path=log_path)
        self.children["agent"] = proc
        url = processes.local_url(self.listen_host, self.port, "/healthz")
        if not processes.wait_until(lambda: processes.http_status(url, timeout=1) == 200,
                                    timeout=AGENT_READY_TIMEOUT, alive=lambda: proc.poll() is None):
            code = processes.stop(proc)
            raise CommandError(f"the worker agent did not answer {url} (exit code {code}); is "
                               f"port {self.port} free? Its log: {log_path}\n"
                               f"{processes.log_tail(log_path)}")

    def _start_celery(self) -> None:
        queue = node_queue(self.name)
        argv = [sys.executable, "-m", "celery", "-A", "flocksite", "worker", "-Q", queue,
                "--hostname", f"{self.name}@flock", "--pool", "threads", "--concurrency", "4",
                "--loglevel", "WARNING"]
        self.children["celery"] = processes.spawn(
            argv, env=services.gateway_env(self.cfg), cwd=embedded.PROJECT_ROOT,
            log_path=self._logs() / "celery.log")
        self.console.ok(f"celery worker consuming {queue}")

    def _check_children(self) -> None:
        proc = self.children["agent"]
        if proc is not None and proc.poll() is not None:
            self.console.warn(f"the worker agent exited ({proc.returncode}); restarting it")
            self._start_agent()
        proc = self.children["celery"]
        if proc is not None and proc.poll() is not None:
            self.console.warn(f"the celery worker exited ({proc.returncode}); restarting it")
            self._start_celery()

    # --- heartbeats ------------------------------------------------------------------------------

    def _beat(self) -> dict:
        self._check_children()
        self.beats += 1
        if self.beats % HARDWARE_REFRESH_BEATS == 0:
            self.hardware = services.hardware_detect()
        else:
            import psutil

            self.hardware["ram_available_bytes"] = psutil.virtual_memory().available
        if self.kind:
            probe = services.engine_probe(self.kind, self.endpoint, timeout=2,
                                          api_key=self.engine_key)
            models, reachable, error = probe.models, probe.reachable, probe.error
        else:
            models, reachable, error = [], False, "no engine configured on this node"
        return {"models": models, "in_flight": self._in_flight(), "hardware": self.hardware,
                "engine_reachable": reachable, "engine_error": error, "node": self._report()}

    def _in_flight(self) -> int:
        url = processes.local_url(self.listen_host, self.port, agent.STATUS_ROUTE)
        try:
            answer = httpx.get(url, timeout=1, trust_env=False,
                               headers={"authorization": f"Bearer {self._me.agent_secret}"})
            return int(answer.json().get("in_flight", 0))
        except (httpx.HTTPError, ValueError, AttributeError):
            return 0

    def _print_ready(self) -> None:
        console = self.console
        engine = f"{self.kind} at {self.endpoint}" if self.kind else "none"
        console.ok(f"agent: {self.agent_url} (the leader reaches the engine through it)")
        console.line(console.paint("Worker is running.", "bold") + "")
        console.line(f"  Node:    {self._me.name} (id {self._me.node_id})")
        console.line(f"  Leader:  {self.client.base_url}")
        console.line(f"  Engine:  {engine}")
        console.line("  Heartbeat every 5 s. Press Ctrl-C to stop.")
