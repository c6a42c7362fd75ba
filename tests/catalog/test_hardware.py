from __future__ import annotations

from catalog import hardware, selectors
from catalog.loader import BUILTIN_DIR, load
from tests.catalog.conftest import CPU_LAPTOP_16, MAC_M3_PRO_36, PI_4GB, RTX_4090_BOX

ENTRIES = load((BUILTIN_DIR,)).entries

NVIDIA_SMI = """0, NVIDIA GeForce RTX 4090, 24564, 23890, 550.54.14
1, NVIDIA A100-SXM4-80GB, 81920, 81000, 550.54.14
"""


def test_nvidia_smi_output_is_parsed_into_gpus():
    gpus = hardware.parse_nvidia_smi(NVIDIA_SMI)
    assert [g["name"] for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB"]
    assert gpus[1]["memory_total_bytes"] == 81920 * 1024**2 and gpus[0]["driver"] == "550.54.14"
    assert hardware.parse_nvidia_smi("NVIDIA-SMI has failed\n") == []


def test_this_machine_is_detected_with_psutil():
    found = hardware.detect()
    assert found["ram_total_bytes"] > 0 and found["cpu_count"] >= 1
    assert isinstance(found["gpus"], list) and found["unified_memory"] in (True, False)
    assert "RAM" in hardware.describe(found)


def test_a_model_needing_more_ram_than_the_node_has_does_not_fit():
    fit = hardware.entry_fit(ENTRIES["qwen3-32b"], CPU_LAPTOP_16, "ollama")
    assert not fit.ok and "needs 24 GB of RAM" in fit.reasons[0]
    assert hardware.entry_fit(ENTRIES["qwen3-14b"], CPU_LAPTOP_16, "ollama").ok  # 16 GB box


def test_vllm_needs_the_whole_model_in_gpu_memory_ollama_only_warns():
    fit = hardware.entry_fit(ENTRIES["llama-3.3-70b"], RTX_4090_BOX, "vllm")
    assert not fit.ok and "48 GB of GPU memory" in fit.reasons[0]
    assert hardware.entry_fit(ENTRIES["qwen3-32b"], RTX_4090_BOX, "vllm").ok  # a 24 GB card
    fit = hardware.entry_fit(ENTRIES["qwen3-32b"], RTX_4090_BOX, "ollama")
    assert fit.ok and fit.notes == []
    fit = hardware.entry_fit(ENTRIES["llama-3.3-70b"], RTX_4090_BOX, "ollama")
    assert fit.ok and "runs on the CPU" in fit.notes[0]
    assert not hardware.entry_fit(ENTRIES["qwen3-8b"], CPU_LAPTOP_16, "vllm").ok


def test_mlx_needs_apple_unified_memory():
    assert not hardware.entry_fit(ENTRIES["qwen3-8b"], RTX_4090_BOX, "mlx").ok
    assert hardware.entry_fit(ENTRIES["qwen3-8b"], MAC_M3_PRO_36, "mlx").ok


def test_unknown_hardware_is_not_checked():
    fit = hardware.entry_fit(ENTRIES["qwen3-32b"], {}, "ollama")
    assert fit.ok and not fit.checked


def test_the_default_model_fits_the_hardware_and_the_engine():
    assert hardware.default_model_choose(ENTRIES.values(), PI_4GB, "ollama").id == "llama-3.2-1b"
    cpu = hardware.default_model_choose(ENTRIES.values(), CPU_LAPTOP_16, "ollama")
    assert cpu.parameters_b <= 4 and "chat" in cpu.capabilities
    gpu = hardware.default_model_choose(ENTRIES.values(), RTX_4090_BOX, "ollama")
    assert gpu.parameters_b > 20 and not gpu.sharding_required
    mac = hardware.default_model_choose(ENTRIES.values(), MAC_M3_PRO_36, "mlx")
    assert mac.sources.mlx and mac.hardware.min_ram_gb <= 36 * 0.6
    only_gguf = hardware.default_model_choose(ENTRIES.values(), CPU_LAPTOP_16, "llamacpp")
    assert only_gguf.sources.llamacpp is not None


def test_the_default_model_selector_reads_the_configured_catalog(db):
    assert selectors.default_model_for(CPU_LAPTOP_16, "ollama") is not None
