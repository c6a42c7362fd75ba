"""Home: what the cluster serves and how well, over the last 24 hours."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict

from accounts.usage_stats import usage_recent, usage_summary
from cluster.selectors import cluster_counts
from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import chips_cached, page

RECENT = 6
CHART_WIDTH, CHART_HEIGHT = 600, 90


def error_tier(rate: float, requests: int) -> str:
    """How worrying an error rate is: under 1% is fine, under 5% is worth a look."""
    if not requests:
        return "idle"
    if rate < 0.01:
        return "good"
    if rate < 0.05:
        return "warn"
    return "bad"


def sparkline(values: list[int], *, width: int = CHART_WIDTH,
              height: int = CHART_HEIGHT) -> dict[str, Any]:
    """Points for an inline SVG line and the area under it; y grows downwards."""
    top = max(values) if values and max(values) > 0 else 1
    step = width / max(len(values) - 1, 1)
    pad = 4
    points = [(round(i * step, 1), round(height - pad - (v / top) * (height - 2 * pad), 1))
              for i, v in enumerate(values)]
    line = " ".join(f"{x},{y}" for x, y in points)
    area = f"0,{height} {line} {width},{height}" if points else ""
    return {"line": line, "area": area, "max": max(values) if values else 0,
            "total": sum(values), "width": width, "height": height,
            "last": values[-1] if values else 0}


def home_context(params: QueryDict) -> dict[str, Any]:
    summary = usage_summary()
    counts = cluster_counts()
    chips = chips_cached()
    top = summary["top_models"][0] if summary["top_models"] else None
    return {
        "summary": summary,
        "counts": counts,
        # Models the engines serve (what clients can call); the live panel fills it in when the
        # engines have not been asked yet, rather than the page waiting on them.
        "models_served": chips["models"] if chips else None,
        "tokens_served": summary["prompt_tokens"] + summary["completion_tokens"],
        "error_tier": error_tier(summary["error_rate"], summary["requests"]),
        "error_percent": round(summary["error_rate"] * 100, 2),
        "top_model": top,
        "chart": sparkline(summary["rpm_last_60"]),
        "recent": list(usage_recent(limit=RECENT)),
    }


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    model = settings.FLOCK.default_model or "auto"
    return page(request, "dashboard/home.html", "home", example_model=model,
                **home_context(request.GET))
