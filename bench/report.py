"""The results as one markdown table (each figure per path, the ratios, the targets and whether
they hold), with the machine it ran on and the details behind the figures."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

PASS, FAIL, NA = "PASS", "FAIL", "n/a"


@dataclass
class Row:
    figure: str
    direct: str = "—"
    flock: str = "—"
    litellm: str = "—"
    ratio: str = ""
    target: str = ""
    result: str = ""


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _get(results: dict, *path: str) -> Any:
    for part in path:
        if not isinstance(results, dict) or part not in results:
            return None
        results = results[part]
    return results


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _verdict(ok: bool | None) -> str:
    return NA if ok is None else PASS if ok else FAIL


def _added(results: dict, scenario: str, path: str, *figure: str) -> float | None:
    mine, direct = _get(results, scenario, path, *figure), _get(results, scenario, "direct", *figure)
    return None if mine is None or direct is None else mine - direct


def _cpu_per(r: dict, scenario: str, path: str, rate: str, scale: float) -> float | None:
    """Cores used by the gateway divided by the rate it served: its CPU cost per unit."""
    cores, per_s = _get(r, scenario, path, "gateway_cpu"), _get(r, scenario, path, rate)
    return None if not cores or not per_s else cores / per_s * scale


def _latency_rows(r: dict) -> list[Row]:
    direct = _get(r, "latency", "direct", "latency_ms", "p50")
    rows = [Row("Latency, concurrency 1, p50 (ms)", _num(direct, 3),
                _num(_get(r, "latency", "flock", "latency_ms", "p50")),
                _num(_get(r, "latency", "litellm", "latency_ms", "p50")))]
    for pct, limit in (("p50", 2.0), ("p99", None)):
        flock = _added(r, "latency", "flock", "latency_ms", pct)
        lite = _added(r, "latency", "litellm", "latency_ms", pct)
        ratio = _ratio(flock, lite)
        ok = None if ratio is None else ratio <= 0.2 and (limit is None or flock <= limit)
        target = "≤ 0.2× LiteLLM" + (f" and ≤ {limit:g} ms" if limit else "")
        rows.append(Row(f"Added latency, concurrency 1, {pct} (ms)", "", _num(flock), _num(lite),
                        _times(ratio), target, _verdict(ok)))
    return rows


def _rps_rows(r: dict) -> list[Row]:
    direct, flock, lite = (_get(r, "rps", p, "rps") for p in ("direct", "flock", "litellm"))
    ratio = _ratio(flock, lite)
    return [
        Row("Requests/s, concurrency 32", _num(direct), _num(flock), _num(lite), _times(ratio),
            "≥ 4× LiteLLM", _verdict(None if ratio is None else ratio >= 4)),
        Row("Gateway CPU per request, concurrency 32 (ms; steadier than req/s on a busy machine)",
            "", *(_num(_cpu_per(r, "rps", p, "rps", 1000)) for p in ("flock", "litellm")),
            _times(_ratio(_cpu_per(r, "rps", "flock", "rps", 1000),
                          _cpu_per(r, "rps", "litellm", "rps", 1000)))),
        Row("Latency, concurrency 32, p50 / p99 (ms)",
            *(f"{_num(_get(r, 'rps', p, 'latency_ms', 'p50'))} / "
              f"{_num(_get(r, 'rps', p, 'latency_ms', 'p99'))}"
              for p in ("direct", "flock", "litellm"))),
    ]


def _stream_rows(r: dict) -> list[Row]:
    rows = [Row("Time to first token, 16 streams, p50 (ms)",
                *(_num(_get(r, "stream", p, "ttft_ms", "p50")) for p in ("direct", "flock", "litellm")))]
    for pct in ("p50", "p99"):
        flock = _added(r, "stream", "flock", "ttft_ms", pct)
        lite = _added(r, "stream", "litellm", "ttft_ms", pct)
        ratio = _ratio(flock, lite)
        rows.append(Row(f"Added time to first token, {pct} (ms)", "", _num(flock), _num(lite),
                        _times(ratio), "≤ 0.2× LiteLLM",
                        _verdict(None if ratio is None else ratio <= 0.2)))
    direct, flock, lite = (_get(r, "stream", p, "tokens_per_s") for p in ("direct", "flock", "litellm"))
    share = _ratio(flock, direct)
    lite_share = _ratio(lite, direct)
    rows.append(Row("Gateway CPU per relayed token (µs)", "",
                    *(_num(_cpu_per(r, "stream", p, "tokens_per_s", 1e6), 0)
                      for p in ("flock", "litellm")),
                    _times(_ratio(_cpu_per(r, "stream", "flock", "tokens_per_s", 1e6),
                                  _cpu_per(r, "stream", "litellm", "tokens_per_s", 1e6)))))
    rows.append(Row("Tokens/s relayed, 16 streams of 200 tokens",
                    _num(direct), _num(flock) + (f" ({share:.0%})" if share else ""),
                    _num(lite) + (f" ({lite_share:.0%})" if lite_share else ""),
                    _times(_ratio(flock, lite)), "Flock ≥ 90% of direct",
                    _verdict(None if share is None else share >= 0.9)))
    return rows


def _hold_rows(r: dict, streams: int) -> list[Row]:
    hold = r.get("hold")
    if not hold:
        return []
    errors = hold["failed_requests"]
    growth = hold["rss_growth_mb"]
    return [
        Row(f"{streams:,} concurrent slow streams, one process: errors", "", f"{errors}",
            target="0", result=_verdict(errors == 0)),
        Row(f"{streams:,} concurrent slow streams: RSS growth (MB)", "",
            f"{_num(growth)} ({_num(hold['rss_baseline_mb'])} → {_num(hold['rss_peak_mb'])})",
            target="< 150 MB", result=_verdict(growth < 150)),
    ]


def _rss_rows(r: dict) -> list[Row]:
    flock = _get(r, "rss", "flock", "per_process_mb")
    lite = _get(r, "rss", "litellm", "per_process_mb")
    ratio = _ratio(flock, lite)
    rows = [Row("Idle RSS per process (MB)", "", _num(flock), _num(lite), _times(ratio),
                "≤ 0.5× LiteLLM", _verdict(None if ratio is None else ratio <= 0.5))]
    flock_s, lite_s = _get(r, "startup", "flock"), _get(r, "startup", "litellm")
    if flock_s is not None or lite_s is not None:
        rows.append(Row("Start-up until healthy (s)", "", _num(flock_s, 1), _num(lite_s, 1),
                        _times(_ratio(flock_s, lite_s))))
    return rows


def _summary_rows(r: dict) -> list[Row]:
    summary = r.get("summary")
    if not summary:
        return []
    return [Row(f"Usage summary ({summary['hours']} h window), {summary['ledger_rows']:,}-row "
                f"ledger, PostgreSQL (ms)", "", f"{_num(summary['ms'], 0)} (cold "
                f"{_num(summary['cold_ms'], 0)})", target="< 300 ms",
                result=_verdict(summary["ms"] < 300))]


def _usage_rows(r: dict) -> list[Row]:
    usage = r.get("usage")
    if not usage:
        return []
    ok = usage["recorded"] == usage["sent"]
    return [Row("Usage records written / requests sent to Flock", "",
                f"{usage['recorded']:,} / {usage['sent']:,}", target="equal",
                result=_verdict(ok))]


def rows(results: dict, *, hold_streams: int) -> list[Row]:
    return [*_latency_rows(results), *_rps_rows(results), *_stream_rows(results),
            *_hold_rows(results, hold_streams), *_rss_rows(results), *_summary_rows(results),
            *_usage_rows(results)]


def table(all_rows: list[Row]) -> str:
    head = ["Figure", "Direct", "Flock", "LiteLLM", "Flock vs LiteLLM", "Target", "Result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for row in all_rows:
        if row.flock == "—" and row.litellm == "—" and row.direct in ("—", ""):
            continue  # a scenario that did not run
        lines.append("| " + " | ".join([row.figure, row.direct, row.flock, row.litellm,
                                         row.ratio, row.target, row.result]) + " |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine(extra: dict[str, str]) -> list[str]:
    memory = psutil.virtual_memory().total / 2**30
    versions = ", ".join(f"{n} {_version(n)}" for n in
                         ("Django", "uvicorn", "uvloop", "httptools", "django-ninja", "orjson", "channels"))
    lines = [f"- CPU: {_cpu_model()}, {os.cpu_count()} cores; RAM {memory:.1f} GiB; "
             f"{platform.system()} {platform.release()}",
             f"- Python {platform.python_version()}; {versions}"]
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    return lines


def details(results: dict) -> list[str]:
    out = ["CPU is in cores (1.00 = one core busy); \"others\" is everything on the machine "
           "outside this run (other people's work), which disturbs the figures when high.", "",
           "| Scenario | Path | Answered | Errors | Req/s | Client CPU | Gateway CPU | Engine CPU "
           "| Others' CPU | Busy before |", "|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in ("latency", "rps", "stream"):
        for path, res in (results.get(scenario) or {}).items():
            out.append(f"| {scenario} | {path} | {res['requests']:,} | {res['errors']} "
                       f"{res['error_kinds'] or ''} | {res['rps']:,.1f} | {res['client_cpu']:.2f} | "
                       f"{res.get('gateway_cpu', 0):.2f} | {res.get('engine_cpu', 0):.2f} | "
                       f"{res.get('other_cpu', 0):.2f} | {res.get('busy_before')} |")
    hold = results.get("hold")
    if hold:
        out.append(f"| hold | flock | {hold['requests']:,} | {hold['errors']} "
                   f"{hold['error_kinds'] or ''} | — | {hold['client_cpu']:.2f} | — | — | — | — |")
    summary = results.get("summary")
    if summary:
        out += ["", f"Usage summary: {summary['rows_in_window']:,} records in the window; runs "
                f"(ms): cold {summary['cold_ms']}, warm {summary['warm_ms']}. Queries of the "
                "last run:", ""]
        out += [f"- {q['ms']} ms: `{q['sql']}`" for q in summary["queries"]]
        spent = sum(q["ms"] for q in summary["queries"])
        out.append(f"- the rest ({summary['ms'] - spent:.0f} ms) is Python: fetching, sorting "
                   "and bucketing the rows")
    return out


def render(results: dict, *, hold_streams: int, settings: dict[str, str],
           extra_machine: dict[str, str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    all_rows = rows(results, hold_streams=hold_streams)
    verdicts = [r.result for r in all_rows if r.result in (PASS, FAIL)]
    parts = [f"# Flock benchmark ({when})", "",
             f"Targets met: {verdicts.count(PASS)} of {len(verdicts)}.", "",
             table(all_rows), "", "## Machine", "", *machine(extra_machine), "", "## Settings", "",
             *[f"- {k}: {v}" for k, v in settings.items()], "", "## Details", "",
             *details(results), ""]
    return "\n".join(parts)
