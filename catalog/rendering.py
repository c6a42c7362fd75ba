"""How `manage.py model` shows entries, plans and installed models, as text or as JSON-ready
dicts. Pure functions of their arguments."""

from __future__ import annotations

from catalog import hardware
from catalog.models import InstalledModel
from catalog.planning import ENGINE_LABELS, Plan
from catalog.schema import PERMISSIVE, Entry
from catalog.terminal import human_bytes, human_duration, table

_CAP_SHORT = {"chat": "chat", "code": "code", "tools": "tools", "vision": "vision",
              "embedding": "embed", "reasoning": "reason"}


def _context(tokens: int) -> str:
    if tokens >= 1_000_000:
        return f"{tokens / 1_048_576:.0f}M"
    return f"{tokens // 1024}K" if tokens >= 1024 else str(tokens)


def search_table(entries: list[Entry], installed: set[str]) -> str:
    rows = []
    for e in entries:
        params = e.parameters + (f"/{e.active_parameters}" if e.active_parameters else "")
        rows.append([("* " if e.id in installed else "  ") + e.id, params, e.quantization,
                     f"{e.size_gb:g} GB", f"{e.hardware.min_ram_gb:g} GB", _context(e.context_length),
                     ",".join(_CAP_SHORT[c] for c in e.capabilities),
                     e.license + ("" if e.license in PERMISSIVE else " (!)"), e.released.isoformat()])
    text = table(["  ID", "PARAMS", "QUANT", "SIZE", "RAM", "CTX", "CAPABILITIES", "LICENSE",
                  "RELEASED"], rows)
    return text + f"\n{len(entries)} model(s); * installed; (!) licence with use restrictions"


def entry_lines(entry: Entry, installed: list[InstalledModel], fits: list[tuple[str, hardware.Fit]]
                ) -> list[str]:
    src = entry.sources
    lines = [
        f"{entry.id} — {entry.name}",
        *([f"  {entry.description}"] if entry.description else []),
        f"  family        {entry.family} ({entry.tier} tier)",
        f"  parameters    {entry.parameters}"
        + (f" ({entry.active_parameters} active)" if entry.active_parameters else ""),
        f"  weights       {entry.quantization}, {entry.size_gb:g} GB download",
        f"  hardware      {entry.hardware.min_ram_gb:g} GB RAM, "
        f"{entry.hardware.min_vram_gb:g} GB VRAM for full GPU offload",
        f"  context       {entry.context_length:,} tokens",
        f"  capabilities  {', '.join(entry.capabilities)}",
        f"  licence       {entry.license_name}",
        f"  released      {entry.released.isoformat()}",
        "  sources",
    ]
    for kind in ("ollama", "vllm", "mlx"):
        if getattr(src, kind):
            lines.append(f"    {ENGINE_LABELS[kind]:<10} {getattr(src, kind)}")
    if src.llamacpp:
        gguf = src.llamacpp
        where = (f"package {gguf.package}" if gguf.package else gguf.path if gguf.path
                 else f"{gguf.repo} / {gguf.file}")
        lines.append(f"    {'llama.cpp':<10} {where}")
    if entry.fallback:
        lines.append(f"  fallback      {' → '.join(entry.fallback)}")
    if entry.sharding_required and entry.sharding:
        lines.append(f"  sharding      required, at least {entry.sharding.min_nodes} nodes")
    for name, fit in fits:
        lines.append(f"  on {name:<11} {fit.summary}")
    for row in installed:
        lines.append(f"  installed     on {row.node.name} ({row.engine}, {row.state})")
    return lines


def plan_lines(plan: Plan) -> list[str]:
    fit = plan.fit
    check = "not checked" if not fit.checked else ("fits" if fit.ok else "DOES NOT FIT")
    lines = [
        f"model    {plan.choice.model_id}" + (f" ({plan.wanted.name})"
                                              if plan.wanted.name != plan.choice.model_id else ""),
        f"node     {plan.node.name} ({hardware.describe(plan.node.hardware or {})})",
        f"engine   {ENGINE_LABELS.get(plan.choice.engine, plan.choice.engine)}",
        f"source   {plan.choice.source}",
        f"size     {human_bytes(plan.size_bytes) if plan.size_bytes else 'unknown until pulled'}",
        f"RAM      {check}: {fit.summary}",
        *[f"         {reason}" for reason in fit.reasons],
        f"ETA      {human_duration(plan.eta_seconds) if plan.eta_seconds is not None else '?'}",
    ]
    if plan.sharding:
        lines.append(f"sharding required: at least {plan.sharding['min_nodes']} nodes "
                     "(handed to `manage.py shard create`)")
    lines += [f"note     {note}" for note in plan.notes]
    return lines


def installed_dict(row: InstalledModel) -> dict:
    return {"model": row.model_id, "node": row.node.name, "engine": row.engine,
            "state": row.state, "source": row.source, "size_bytes": row.bytes_total or None,
            "bytes_done": row.bytes_done, "endpoint": row.serve_endpoint or
            row.node.engine_endpoint, "error": row.error, "added_by": row.added_by,
            "added_at": row.created_at.isoformat(),
            "ready_at": row.ready_at.isoformat() if row.ready_at else None}


def ls_table(rows: list[dict]) -> str:
    def state(row: dict) -> str:
        if row["state"] == "pulling" and row.get("size_bytes"):
            return f"pulling {100 * row['bytes_done'] / row['size_bytes']:.0f}%"
        return row["state"]

    body = [[r["model"], r["node"], r["engine"], state(r), human_bytes(r.get("size_bytes"))
             if r.get("size_bytes") else "-", r.get("added_by") or "-"] for r in rows]
    return table(["MODEL", "NODE", "ENGINE", "STATE", "SIZE", "ADDED BY"], body)
