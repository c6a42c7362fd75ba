"""`make bench`: Flock against direct calls and LiteLLM's proxy, on one machine in one run.

Starts a fast fake engine, Flock (served as `manage.py up` serves it) and LiteLLM's proxy on
127.0.0.1, sends each scenario's traffic through every path, times the usage summary over a
10-million-row ledger in PostgreSQL, then prints one table and writes it to
bench/results/latest.md. Every process it started is ended when it stops.

    python -m bench.run                       # everything (6 to 8 minutes once installed)
    python -m bench.run --quick               # shorter runs of everything
    python -m bench.run --only latency,rps    # a subset
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ledger, paths, profile, report, scenarios
from bench.procs import Procs

SCENARIOS = ("latency", "rps", "stream", "hold", "rss", "summary")
TRAFFIC = ("latency", "rps", "stream", "hold", "rss")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCENARIOS), metavar="A,B",
                        help=f"scenarios to run, of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="shorter runs of every scenario")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for each gateway (default 1; more needs Redis for Flock)")
    parser.add_argument("--flock-ref", metavar="GIT_REF",
                        help="run Flock from this commit (exported with git archive) instead of "
                             "the working tree; for before/after comparisons")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--flock-server", choices=("up", "daphne"), default="up",
                        help="serve Flock as `manage.py up` does (default), or with daphne")
    parser.add_argument("--litellm-version", default=paths.LITELLM_VERSION)
    parser.add_argument("--stream-pace-ms", type=float, default=5.0,
                        help="the engine's pace in the streaming scenario (default 5: 200 tokens/s)")
    parser.add_argument("--slow-pace-ms", type=float, default=500.0,
                        help="the engine's pace in the 1,000-stream scenario (default 500)")
    parser.add_argument("--ledger-rows", type=int, default=10_000_000)
    parser.add_argument("--quiet-wait", type=float, default=None, metavar="SECONDS",
                        help="before each run, wait up to this long for the machine to be idle "
                             "(default 30, 5 with --quick)")
    parser.add_argument("--summary-hours", type=int, default=24,
                        help="the usage summary's window (default 24, the dashboard's)")
    parser.add_argument("--pg-url", default=ledger.DEFAULT_URL,
                        help="the bench's own PostgreSQL database (created when missing)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14",
                        help="Redis for Flock's shared quotas when --workers > 1")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, sample Flock under load with py-spy and write "
                             "bench/results/flock-profile.md")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the processes' logs and data directories")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def run_traffic(args: argparse.Namespace, plan: scenarios.Plan, work: Path,
                results: dict, extra: dict[str, str]) -> None:
    venv = None
    if not args.no_litellm:
        try:
            venv = paths.litellm_install(args.litellm_version)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"!! LiteLLM's proxy could not be installed ({exc}); its column stays empty",
                  file=sys.stderr, flush=True)
        else:
            extra["LiteLLM"] = (f"litellm[proxy] {paths.litellm_version(venv)} "
                                "(own venv, no database)")
    redis_url = ""
    if args.workers > 1:
        if not _redis_ready(args.redis_url):
            raise SystemExit(f"--workers {args.workers} needs Redis at {args.redis_url} for "
                             "Flock's shared quotas (scripts/services.sh starts one)")
        redis_url = args.redis_url
    project = paths.PROJECT
    if args.flock_ref:
        project = work / "flock-src"
        extra["Flock code"] = paths.flock_export(args.flock_ref, project)
    else:
        extra["Flock code"] = paths.flock_tree_label()
    with Procs(work) as procs:
        engine = paths.start_engine(procs, stream_pace_ms=args.stream_pace_ms,
                                    slow_pace_ms=args.slow_pace_ms)
        flock = paths.start_flock(procs, work, engine_port=engine.port, workers=args.workers,
                                  redis_url=redis_url, project=project, server=args.flock_server)
        targets = [engine, flock]
        if venv is not None:
            targets.append(paths.start_litellm(procs, work, engine_port=engine.port,
                                               workers=args.workers, venv=venv))
        results["startup"] = {t.name: round(t.startup_s, 2) for t in targets if t.startup_s}
        print(f"==> paths up: {', '.join(f'{t.name} :{t.port}' for t in targets)}", flush=True)
        for target in targets:
            scenarios.warm(target)
        if "rss" in args.only:
            time.sleep(2.0)
            results["rss"] = {t.name: scenarios.idle_rss(t) for t in targets[1:]}
        for name in ("latency", "rps", "stream"):
            if name in args.only:
                print(f"==> {name}", flush=True)
                results[name] = getattr(scenarios, name)(targets, engine, plan)
        if "hold" in args.only:
            print(f"==> {plan.hold_streams} concurrent slow streams through Flock", flush=True)
            results["hold"] = scenarios.hold(flock, plan, slow_pace_ms=args.slow_pace_ms)
        results["usage"] = {"recorded": scenarios.usage_rows(flock),
                            "sent": scenarios.SENT.get("flock", 0)}
        if args.profile:
            print("==> profiling Flock under load (py-spy)", flush=True)
            written = profile.profile_flock(flock, args.out.parent, seconds=plan.rps_seconds,
                                            stream_tokens=plan.stream_tokens)
            print(f"    {written}", flush=True)


def run_summary(args: argparse.Namespace, work: Path, results: dict,
                extra: dict[str, str]) -> None:
    print("==> usage summary over the ledger", flush=True)
    ledger.ensure_postgres(args.pg_url)
    now = ledger.ledger_prepare(args.pg_url, args.ledger_rows, work)
    results["summary"] = ledger.ledger_measure(args.pg_url, now, hours=args.summary_hours,
                                               repeat=3)
    extra["PostgreSQL"] = ledger.server_version(args.pg_url)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = scenarios.Plan.quick() if args.quick else scenarios.Plan()
    if args.quiet_wait is not None:
        plan = dataclasses.replace(plan, quiet_wait=args.quiet_wait)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds, so processes are ended
    work = Path(tempfile.mkdtemp(prefix="flock-bench-"))
    results: dict = {}
    extra: dict[str, str] = {}
    failed = ""
    started = time.monotonic()
    load = os.getloadavg()
    try:
        if set(args.only) & set(TRAFFIC):
            run_traffic(args, plan, work, results, extra)
        if "summary" in args.only:
            try:
                run_summary(args, work, results, extra)
            except Exception as exc:  # the traffic figures above still make their table
                failed = f"{type(exc).__name__}: {exc}"
                print(f"!! the usage summary failed: {failed}", file=sys.stderr, flush=True)
    except BaseException:
        print(f"bench stopped; logs are in {work}", file=sys.stderr)
        raise
    settings = {
        "run": f"{'quick' if args.quick else 'full'}, {time.monotonic() - started:.0f} s; "
               f"scenarios: {', '.join(args.only)}",
        "workers per gateway": str(args.workers),
        "load average at the start": " ".join(f"{x:.2f}" for x in load),
        "traffic": f"127.0.0.1 only; load generator and fake engine in processes of their own; "
                   f"concurrency 1 ({plan.latency_requests} requests in {plan.latency_rounds} rounds), "
                   f"32 ({plan.rps_seconds:g} s), "
                   f"16 streams of {plan.stream_tokens} tokens at {args.stream_pace_ms:g} ms/token "
                   f"({plan.stream_seconds:g} s), {plan.hold_streams} streams of "
                   f"{plan.hold_tokens} tokens at {args.slow_pace_ms:g} ms/token",
        "Flock": ("daphne" if args.flock_server == "daphne" else
                  "uvicorn (uvloop, httptools) as `manage.py up` serves it")
                 + ", flocksite.asgi:application, SQLite, "
                 + ("Redis" if args.workers > 1 else "in-process cache")
                 + ", user key with a daily token quota, usage recorded",
    }
    text = report.render(results, hold_streams=plan.hold_streams, settings=settings,
                         extra_machine=extra)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    print(f"written to {args.out}")
    if failed:
        print(f"the usage summary failed ({failed}); its rows stay empty", file=sys.stderr)
    if not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
