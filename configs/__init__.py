"""Pipeline configuration as data: pydantic sections validated on load from YAML.

``load_config(path)`` merges a YAML file over the embedded defaults
(``configs/default.yaml``), validates it, and reports errors by YAML key path.
``config_hash`` identifies a resolved config; it is stored on every record.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from emoforge.configs.agents import AgentConfig, AgentsConfig
from emoforge.configs.base import Section
from emoforge.configs.inputs import InputsConfig
from emoforge.configs.preprocess import PreprocessConfig
from emoforge.configs.quality import AggregationConfig, JudgeConfig
from emoforge.configs.release import ReleaseConfig
from emoforge.configs.run import RunConfig
from emoforge.configs.sampling import SamplingConfig
from emoforge.configs.storage import StorageConfig

__all__ = [
    "AgentConfig",
    "ConfigError",
    "PipelineConfig",
    "config_hash",
    "default_config_path",
    "load_config",
]


class PipelineConfig(Section):
    """The whole resolved configuration of a run."""

    name: str = Field("default", description="Config name, shown in manifests and reports.")
    inputs: InputsConfig = InputsConfig()
    sampling: SamplingConfig = SamplingConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    agents: AgentsConfig = AgentsConfig()
    judge: JudgeConfig = JudgeConfig()
    aggregation: AggregationConfig = AggregationConfig()
    storage: StorageConfig = StorageConfig()
    release: ReleaseConfig = ReleaseConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="before")
    @classmethod
    def _one_taxonomy(cls, data: Any) -> Any:
        """The instruction lists the agents' taxonomy unless a YAML sets it explicitly."""
        if not isinstance(data, dict):
            return data
        labels = ((data.get("agents") or {}).get("taxonomy") or {}).get("labels")
        sampling = dict(data.get("sampling") or {})
        instruction = dict(sampling.get("instruction") or {})
        if labels is not None and "taxonomy" not in instruction:
            instruction["taxonomy"] = labels
            sampling["instruction"] = instruction
            return {**data, "sampling": sampling}
        return data

    @model_validator(mode="after")
    def _judge_agent_exists(self) -> PipelineConfig:
        if self.judge.backend == "llm" and self.judge.llm is None:
            if self.judge.agent is None:
                raise ValueError("judge.backend 'llm' needs judge.llm or judge.agent")
            if self.judge_agent() is None:
                raise ValueError(f"judge.agent {self.judge.agent!r} is not an agent in agents.jury")
        return self

    def judge_agent(self) -> AgentConfig | None:
        """The agent config the LLM judge runs on: inline ``judge.llm`` or a jury entry by name."""
        if self.judge.llm is not None:
            return self.judge.llm
        return next((a for a in self.agents.jury if a.name == self.judge.agent), None)


class ConfigError(ValueError):
    """A config file that does not validate; the message names each bad YAML key."""


def default_config_path() -> Path:
    return Path(str(resources.files("emoforge.configs").joinpath("default.yaml")))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the embedded defaults, merge ``path`` and ``overrides`` over them, validate."""
    data = _read_yaml(default_config_path())
    source = "default.yaml"
    if path is not None:
        data = _deep_merge(data, _read_yaml(Path(path)))
        source = str(path)
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: invalid configuration"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from exc


def config_hash(config: PipelineConfig) -> str:
    """Stable 16-hex-digit hash of the resolved config (key order independent)."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
