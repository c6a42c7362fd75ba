"""What a machine offers (RAM, GPUs, Apple unified memory), whether a catalog entry fits it, and
which model to pick by default.

Hardware is a plain dict so it can be stored on the node (Node.hardware) and read back the same.
Memory is compared in GiB: a "16 GB" machine has 16 GiB of RAM."""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import psutil

from catalog.schema import Entry

GIB = 1024**3
# Operating systems report total memory minus what firmware and the kernel reserve, so a 16 GiB
# machine shows about 15.6 GiB; that must still count as 16.
RAM_SLACK_GB = 0.75
# macOS lets the GPU wire about three quarters of unified memory by default.
APPLE_GPU_SHARE = 0.75
# Without a GPU only small models answer at a usable speed (the original's CPU guidance).
CPU_ONLY_MAX_PARAMETERS_B = 4.0
# Leave room for the OS, the engine's KV cache and other programs when picking a default.
DEFAULT_RAM_SHARE = 0.6


def parse_nvidia_smi(text: str) -> list[dict]:
    """Rows of `nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version
    --format=csv,noheader,nounits` (memory in MiB)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            total, free = int(float(parts[2])), int(float(parts[3]))
        except ValueError:
            continue
        gpus.append({"vendor": "nvidia", "index": int(parts[0]) if parts[0].isdigit() else len(gpus),
                     "name": parts[1], "memory_total_bytes": total * 1024**2,
                     "memory_free_bytes": free * 1024**2,
                     "driver": parts[4] if len(parts) > 4 else ""})
    return gpus


def _nvml_gpus() -> list[dict] | None:
    try:
        import pynvml  # optional: nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: treat like no NVIDIA GPU
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append({"vendor": "nvidia", "index": index,
                         "name": name.decode() if isinstance(name, bytes) else name,
                         "memory_total_bytes": int(memory.total),
                         "memory_free_bytes": int(memory.free), "driver": ""})
        return gpus
    finally:
        pynvml.nvmlShutdown()


def nvidia_gpus(timeout: float = 5.0) -> list[dict]:
    """NVIDIA GPUs through NVML when the bindings are installed, else through nvidia-smi."""
    found = _nvml_gpus()
    if found is not None:
        return found
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = "--query-gpu=index,name,memory.total,memory.free,driver_version"
    try:
        done = subprocess.run([smi, query, "--format=csv,noheader,nounits"], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def _apple_chip() -> str:
    try:
        done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                              text=True, timeout=2, check=False)
        return done.stdout.strip() or "Apple Silicon"
    except (OSError, subprocess.TimeoutExpired):
        return "Apple Silicon"


def detect() -> dict:
    """This machine: CPU, RAM, GPUs, and whether memory is unified (Apple Silicon)."""
    memory = psutil.virtual_memory()
    system, machine = platform.system(), platform.machine()
    apple = system == "Darwin" and machine == "arm64"
    gpus = nvidia_gpus() if system == "Linux" or system == "Windows" else []
    if apple:
        gpus = [{"vendor": "apple", "index": 0, "name": _apple_chip(),
                 "memory_total_bytes": int(memory.total * APPLE_GPU_SHARE),
                 "memory_free_bytes": int(memory.available * APPLE_GPU_SHARE), "driver": ""}]
    return {
        "cpu_count": psutil.cpu_count(logical=True) or 0,
        "cpu_physical": psutil.cpu_count(logical=False) or 0,
        "ram_total_bytes": memory.total,
        "ram_available_bytes": memory.available,
        "platform": platform.platform(),
        "system": system,
        "machine": machine,
        "unified_memory": apple,
        "gpus": gpus,
    }


def ram_gb(hardware: dict) -> float | None:
    total = hardware.get("ram_total_bytes")
    return total / GIB if total else None


def vram_gb(hardware: dict) -> float:
    return sum(g.get("memory_total_bytes", 0) for g in hardware.get("gpus") or []) / GIB


def has_gpu(hardware: dict) -> bool:
    return bool(hardware.get("gpus"))


def describe(hardware: dict) -> str:
    """'linux/x86_64 · 23 GiB RAM · 2 cores · no GPU'"""
    if not hardware:
        return "unknown hardware"
    parts = [f"{hardware.get('system', '?').lower()}/{hardware.get('machine', '?')}"]
    ram = ram_gb(hardware)
    if ram:
        parts.append(f"{ram:.0f} GiB RAM")
    parts.append(f"{hardware.get('cpu_count', '?')} cores")
    gpus = hardware.get("gpus") or []
    if hardware.get("unified_memory"):
        parts.append("unified memory")
    elif gpus:
        parts.append(f"{len(gpus)}× {gpus[0].get('name', 'GPU')} ({vram_gb(hardware):.0f} GiB)")
    else:
        parts.append("no GPU")
    return " · ".join(parts)


@dataclass(frozen=True)
class Fit:
    ok: bool
    checked: bool  # False when the node reported no hardware
    ram_needed_gb: float = 0.0
    ram_gb: float | None = None
    vram_needed_gb: float = 0.0
    vram_gb: float | None = None
    reasons: list[str] = field(default_factory=list)  # why it does not fit
    notes: list[str] = field(default_factory=list)  # it fits, but...

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def summary(self) -> str:
        if not self.checked:
            return "not checked (the node reported no hardware)"
        have = f"{self.ram_gb:.1f} GiB" if self.ram_gb is not None else "?"
        text = f"needs {self.ram_needed_gb:g} GB RAM, node has {have}"
        if self.vram_needed_gb and self.vram_gb:
            text += f"; needs {self.vram_needed_gb:g} GB VRAM, node has {self.vram_gb:.1f} GiB"
        return text + (" — fits" if self.ok else " — does not fit")


def fit_check(ram_needed: float, vram_needed: float, hardware: dict, engine: str) -> Fit:
    """Whether a model needing `ram_needed`/`vram_needed` GB fits a node with `hardware` running
    `engine`. vLLM needs the whole model in GPU memory and MLX in unified memory; Ollama and
    llama.cpp can run on the CPU or split between GPU and CPU, so for them VRAM is advice."""
    ram = ram_gb(hardware)
    if ram is None:
        return Fit(ok=True, checked=False, ram_needed_gb=ram_needed, vram_needed_gb=vram_needed,
                   notes=["the node reported no hardware; fit not checked"])
    vram = vram_gb(hardware)
    reasons, notes = [], []
    if ram + RAM_SLACK_GB < ram_needed:
        reasons.append(f"needs {ram_needed:g} GB of RAM; the node has {ram:.1f} GiB")
    if engine == "vllm" and vram + RAM_SLACK_GB < vram_needed:
        reasons.append(f"vLLM needs {vram_needed:g} GB of GPU memory; the node has "
                       f"{vram:.1f} GiB" if vram else "vLLM needs an NVIDIA GPU; the node has none")
    elif engine == "mlx" and not hardware.get("unified_memory"):
        reasons.append("MLX-LM needs Apple Silicon; the node is not a Mac with unified memory")
    elif engine == "mlx" and vram + RAM_SLACK_GB < vram_needed:
        reasons.append(f"needs {vram_needed:g} GB of GPU-usable unified memory; the node has "
                       f"{vram:.1f} GiB")
    elif not has_gpu(hardware):
        notes.append("no GPU: runs on the CPU, slowly for anything above ~3B parameters")
    elif vram + RAM_SLACK_GB < vram_needed:
        notes.append(f"{vram_needed:g} GB of VRAM wanted, {vram:.1f} GiB present: part of the "
                     "model runs on the CPU")
    return Fit(ok=not reasons, checked=True, ram_needed_gb=ram_needed, ram_gb=round(ram, 2),
               vram_needed_gb=vram_needed, vram_gb=round(vram, 2), reasons=reasons, notes=notes)


def entry_fit(entry: Entry, hardware: dict, engine: str) -> Fit:
    return fit_check(entry.hardware.min_ram_gb, entry.hardware.min_vram_gb, hardware, engine)


def servable(entry: Entry, engine: str) -> bool:
    return entry.sources.for_engine(engine) is not None


def default_model_choose(entries: Iterable[Entry], hardware: dict, engine: str) -> Entry | None:
    """The biggest chat model that fits comfortably: within 60% of RAM (and of VRAM for vLLM),
    at most ~4B parameters without a GPU; the newest wins a tie. None when nothing fits."""
    ram = ram_gb(hardware) or 0.0
    gpu = has_gpu(hardware)
    best: Entry | None = None
    for entry in entries:
        if "chat" not in entry.capabilities or entry.sharding_required or not servable(entry, engine):
            continue
        if not entry_fit(entry, hardware, engine).ok:
            continue
        if entry.hardware.min_ram_gb > ram * DEFAULT_RAM_SHARE:
            continue
        if not gpu and entry.parameters_b > CPU_ONLY_MAX_PARAMETERS_B:
            continue
        if best is None or (entry.parameters_b, entry.released) > (best.parameters_b, best.released):
            best = entry
    return best
