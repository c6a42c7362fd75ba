"""`manage.py up`: start Flock on this machine as the leader."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from cluster import embedded, liveness, processes, services, watchdog
from cluster.console import Console
from cluster.gateway_server import NAME as SERVER
from cluster.gateway_server import gateway_argv
from cluster.tasks import engine_watchdog_tick
from flocksite.config import ConfigError, FlockConfig, parse_listen

GATEWAY_READY_TIMEOUT = 60.0


@dataclass
class EngineChoice:
    kind: str = ""
    endpoint: str = ""
    models: tuple[str, ...] = ()
    embedded: embedded.EmbeddedEngine | None = None
    reachable: bool = True


class Interrupted(Exception):
    pass


def _interrupt(signum, frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Command(BaseCommand):
    help = (
        "Start Flock on this machine as the cluster leader: apply database migrations, offer to "
        "create the first dashboard admin (on a terminal), create the first admin API key "
        "(printed once, saved to $FLOCK_DATA_DIR/admin.key), find an engine "
        "(FLOCK_ENGINE, else Ollama/vLLM/MLX-LM/llama.cpp on their default ports, else start the "
        "embedded llama.cpp engine with gemma-3-270m; with FLOCK_ENGINE=llamacpp and nothing on "
        "its local endpoint, the embedded engine starts there), then serve the OpenAI and Anthropic APIs "
        "with uvicorn until Ctrl-C. A watchdog restarts the embedded engine after 3 failed health "
        "checks in a row."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--listen", metavar="HOST:PORT",
                            help="address to serve on (default: FLOCK_LISTEN or :8080)")
        parser.add_argument("--no-wizard", action="store_true",
                            help="never ask questions on the first run (for scripts and services)")
        parser.add_argument("--no-engine", action="store_true",
                            help="serve the gateway without finding or starting an engine")
        parser.add_argument("--watchdog-interval", type=float, default=watchdog.INTERVAL,
                            metavar="SECONDS",
                            help="seconds between health checks of the embedded engine "
                                 "(default: %(default)s)")

    def handle(self, *args, **options) -> None:
        if options["watchdog_interval"] <= 0:
            raise CommandError("--watchdog-interval must be greater than 0")
        self.console = Console(self.stdout)
        self.cfg = self._config(options["listen"])
        self.engine = EngineChoice()
        self.gateway: subprocess.Popen | None = None
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._check_port()
            self._start(options)
            self._supervise(options["watchdog_interval"])
        except (Interrupted, KeyboardInterrupt):
            self.console.line("Interrupted; stopping.")
            raise CommandError("interrupted before Flock was ready", returncode=130) from None
        finally:
            self._shutdown()
            signal.signal(signal.SIGTERM, previous)

    def _config(self, listen: str | None) -> FlockConfig:
        cfg: FlockConfig = settings.FLOCK
        if not listen:
            return cfg
        try:
            host, port = parse_listen(listen, "--listen")
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        return dataclasses.replace(cfg, listen_host=host, listen_port=port)

    def _check_port(self) -> None:
        host, port = self.cfg.listen_host, self.cfg.listen_port
        if processes.port_is_free(host, port):
            return
        if services.gateway_running(processes.local_url(host, port)):
            raise CommandError(f"Flock is already running at {self.cfg.api_base_url} "
                               "(see `manage.py status`).")
        raise CommandError(
            f"port {port} on {host} is already in use by another program. Stop it, or serve "
            f"Flock elsewhere: `manage.py up --listen :{port + 1}` (or FLOCK_LISTEN=:{port + 1}).")

    def _start(self, options: dict) -> None:
        console = self.console
        call_command("migrate", interactive=False, verbosity=0)
        console.ok(f"database ready ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
        if not options["no_wizard"] and sys.stdin.isatty():
            self._offer_first_admin()
        self.admin = services.admin_key_bootstrap(data_dir=self.cfg.data_dir)
        first_run = self.admin.plaintext is not None
        if not options["no_engine"]:
            ask = first_run and not options["no_wizard"] and sys.stdin.isatty()
            self.engine = self._find_engine(ask)
        self._register_leader()
        self._start_gateway()
        self._print_ready()

    def _find_engine(self, ask: bool) -> EngineChoice:
        console = self.console
        found = services.engine_detect(self.cfg)
        if found is None:
            console.step("no engine answers on the default ports (Ollama :11434, vLLM :8000, "
                         "MLX-LM :8088, llama.cpp :8081)")
            if ask and not self._confirm("Start the embedded llama.cpp engine with gemma-3-270m "
                                         "(about 250 MB of RAM)? [Y/n] "):
                console.warn("no engine; set FLOCK_ENGINE and its endpoint, then restart")
                return EngineChoice()
            return self._start_embedded(port=None)
        kind, endpoint = found
        api_key = self.cfg.vllm_api_key if kind == "vllm" else ""
        probe = services.engine_probe(kind, endpoint, timeout=3, api_key=api_key)
        if probe.reachable:
            console.ok(f"engine: {kind} at {endpoint}")
            return EngineChoice(kind, endpoint, tuple(probe.models))
        local_port = services.loopback_port(endpoint)
        if kind == "llamacpp" and local_port and processes.port_is_free("127.0.0.1", local_port):
            console.step(f"nothing answers at {endpoint}; starting the embedded llama.cpp there")
            return self._start_embedded(port=local_port)
        console.fail(f"engine: {kind} at {endpoint} is not reachable ({probe.error})")
        console.hint(f"start it with: {services.engine_start_hint(kind)}")
        console.hint("Flock starts anyway; requests fail with engine_unreachable until it is up.")
        return EngineChoice(kind, endpoint, reachable=False)

    def _offer_first_admin(self) -> None:
        """With no dashboard admin yet, offers to create one (a Django staff user) right away."""
        from django.contrib.auth import get_user_model

        if get_user_model().objects.filter(is_staff=True, is_active=True).exists():
            return
        if not self._confirm("No dashboard admin yet. Create one now? [Y/n] "):
            self.console.hint("create one later with: python manage.py createsuperuser")
            return
        try:
            call_command("createsuperuser")
        except (SystemExit, CommandError) as exc:  # Ctrl-C or a refused answer: go on without
            self.console.warn(f"no admin created ({exc or 'cancelled'}); later: "
                              "python manage.py createsuperuser")

    def _confirm(self, question: str) -> bool:
        self.stdout.write(question, ending="")
        self.stdout.flush()
        return sys.stdin.readline().strip().lower() in ("", "y", "yes")

    def _start_embedded(self, port: int | None) -> EngineChoice:
        console = self.console
        console.step("starting the embedded llama.cpp engine")
        embedded.ensure_installed(self.stdout)
        models = self.cfg.data_dir / "models"
        if not any(models.glob("*.gguf")):
            console.step(f"preparing the gemma-3-270m model in {models} (first run only)")
        engine = embedded.EmbeddedEngine(self.cfg.data_dir, port=port)
        self.engine = EngineChoice("llamacpp", "", (engine.alias,), engine)
        started = time.monotonic()
        try:
            engine.start()
        except embedded.EmbeddedEngineError as exc:
            raise CommandError(str(exc)) from None
        console.ok(f"engine: llama.cpp (embedded) at {engine.endpoint}, ready in "
                   f"{time.monotonic() - started:.1f}s; log: {engine.log_path}")
        self.engine.endpoint = engine.endpoint
        return self.engine

    def _register_leader(self) -> None:
        build = embedded.build_label() if self.engine.embedded else ""
        services.node_register_leader(
            name=services.local_node_name(), address=self.cfg.api_base_url,
            engine=self.engine.kind, endpoint=self.engine.endpoint,
            embedded=self.engine.embedded is not None, hardware=services.hardware_detect(),
            llama_cpp_build=build)

    def _start_gateway(self) -> None:
        cfg = self.cfg
        env = services.gateway_env(cfg)
        argv = gateway_argv(host=cfg.listen_host, port=cfg.listen_port)
        (cfg.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.console.step(f"starting the gateway on {cfg.listen_host}:{cfg.listen_port}")
        self.gateway = gateway = processes.spawn(argv, env=env, cwd=embedded.PROJECT_ROOT)
        healthz = processes.local_url(cfg.listen_host, cfg.listen_port, "/healthz")
        ready = processes.wait_until(lambda: processes.http_status(healthz, timeout=1) == 200,
                                     timeout=GATEWAY_READY_TIMEOUT, interval=0.2,
                                     alive=lambda: gateway.poll() is None)
        if not ready:
            code = processes.stop(gateway)
            raise CommandError(f"the gateway did not answer {healthz} ({SERVER} exit code {code}); "
                               "see its output above, or run `manage.py doctor`")

    def _print_ready(self) -> None:
        console, cfg, engine = self.console, self.cfg, self.engine
        base = cfg.api_base_url
        model = cfg.default_model or (engine.models[0] if engine.models else "")
        if model:
            console.ok(f"default model: {model}")
        else:
            console.warn("default model: none yet (the engine serves no model)")
            suggestion = self._suggested_model()
            if suggestion:
                console.hint(f"{suggestion} fits this machine and {engine.kind}: "
                             f"python manage.py model add {suggestion}")
        console.line("")
        console.line(console.paint("Flock is ready.", "bold"))
        console.line(f"  API:            {base}/v1")
        console.line(f"  Engine:         {self._engine_label()}")
        console.line(f"  Dashboard:      {base}/")
        from django.contrib.auth import get_user_model

        if not get_user_model().objects.filter(is_staff=True, is_active=True).exists():
            console.line("                  (no admin yet: python manage.py createsuperuser)")
        if self.admin.plaintext:
            console.line(f"  Admin API key:  {self.admin.plaintext}")
            console.line(f"                  (shown once; saved to {self.admin.path}, mode 0600)")
            key = self.admin.plaintext
        else:
            console.line(f"  Admin API key:  in {self.admin.path}")
            key = f"$(cat {self.admin.path})"
        console.line("")
        console.line("  Try it:")
        console.line(f"    curl {base}/v1/chat/completions \\")
        console.line(f'      -H "Authorization: Bearer {key}" \\')
        console.line('      -H "Content-Type: application/json" \\')
        console.line("""      -d '{"model":"auto","messages":[{"role":"user","content":"Say hi"}]}'""")
        console.line("")
        console.line("Press Ctrl-C to stop.")

    def _suggested_model(self) -> str:
        """The catalog model that best fits this machine's hardware and engine."""
        if not self.engine.kind:
            return ""
        from catalog.selectors import default_model_for

        entry = default_model_for(services.hardware_detect(), self.engine.kind)
        return entry.id if entry else ""

    def _engine_label(self) -> str:
        engine = self.engine
        if not engine.kind:
            return "none (set FLOCK_ENGINE and its endpoint, or run `manage.py doctor`)"
        label = "llamacpp (embedded)" if engine.embedded else engine.kind
        return f"{label} at {engine.endpoint}" + ("" if engine.reachable else " (not reachable)")

    def _supervise(self, interval: float) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        if self.engine.embedded is not None:
            dog = watchdog.register(watchdog.Watchdog(self.engine.embedded, interval=interval))
            # Celery's .apply() runs the task here, where the process handle lives.
            dog.start(tick=lambda: engine_watchdog_tick.apply(kwargs={"name": dog.name}))
        # Marks silent workers offline and keeps the leader's placements (cluster.liveness).
        liveness.LeaderLoop(services.local_node_name()).start()
        assert self.gateway is not None
        while not stop.wait(0.5):
            code = self.gateway.poll()
            if code is not None:
                raise CommandError(f"the gateway ({SERVER}) exited with code {code}; stopped "
                                   "everything. See its output above.")
        self.console.line("Stopping Flock...")

    def _shutdown(self) -> None:
        found = watchdog.registered("embedded")
        if found is not None:
            found.stop()
            watchdog.unregister("embedded")
        processes.stop(self.gateway)
        if self.engine.embedded is not None:
            self.engine.embedded.stop()
            self.console.line("Stopped the gateway and the embedded engine.")
        elif self.gateway is not None:
            self.console.line("Stopped the gateway.")
        signal.signal(signal.SIGINT, signal.default_int_handler)
