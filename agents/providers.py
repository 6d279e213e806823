"""Providers: what an agent's ``backend`` names, declared once beside the code that serves it.

Words: a *provider* is one value an agent's ``backend:`` may take (the YAML key and the
``Annotation.backend`` column keep that name) with everything the rest of the code must know
about it: a ``ProviderSpec``. A ``ChatBackend`` (``agents/base.py``) is the client object an
LLM provider's spec builds to send prompts. Each provider module declares its spec as a
module-level ``PROVIDER`` in ``agents/cues/``, ``agents/recognizers/`` or ``agents/backends/``,
and a batch API client its ``BATCH_API`` (a ``BatchSpec``) beside the client;
``providers()`` finds them there, so adding a provider is adding its file(s). ``register``
adds a spec declared anywhere else (a plugin, a test).

Layers below ``agents`` (configs, storage, quality) see a provider as a plain string: configs
accept any name and ``check_providers`` validates it against the specs where a run's config is
built; consensus reads the facts it needs (``vote_sources``) as data handed down.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from emoforge.configs import ConfigError, PipelineConfig
from emoforge.configs.agents import AgentConfig
from emoforge.quality.vote_source import VoteSource

if TYPE_CHECKING:
    from emoforge.agents.backends.batch_api import BatchClient
    from emoforge.agents.base import Annotator, ChatBackend
    from emoforge.agents.labels import SentenceEmbedder
    from emoforge.configs.agents import TaxonomyConfig
    from emoforge.storage.records import RunContext

    BuildAnnotator = Callable[[AgentConfig, RunContext, TaxonomyConfig, SentenceEmbedder | None], Annotator]

Kind = Literal["cues", "recognizer", "llm"]
# Where provider modules live: every module there that defines ``PROVIDER`` is one provider,
# and one that defines ``BATCH_API`` gives a provider its batch API.
_PACKAGES = ("emoforge.agents.cues", "emoforge.agents.recognizers", "emoforge.agents.backends")


@dataclass(frozen=True)
class BatchSpec:
    """A provider's batch API: the client over the agent's realtime chat backend, and the
    price of a batch request relative to the same request in real time. Declared beside the
    client (which imports the realtime backend, so the backend's module cannot name it)."""

    provider: str
    client: Callable[[ChatBackend], BatchClient]
    price_factor: float


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the code outside a provider's module knows about it.

    Attributes:
        name: the ``backend:`` value that selects it.
        kind: ``cues`` (rules over extracted features), ``recognizer`` (a trained offline
            model) or ``llm`` (a ``ChatBackend`` under ``LLMAnnotator``).
        annotator: builds the annotator of an offline (cues, recognizer) provider.
        chat: builds the chat backend of an LLM provider.
        remote: sends requests to a server: preflight checks its key and URL, and runs hold a
            Prefect concurrency slot named after it (``flows/runners.py``).
        api_key_env: the env var holding the key when the agent names none.
        needs_model / needs_base_url: config keys the agent must set.
        clip_modalities: which of ``audio``/``video`` it can be sent (cue rules read features only).
        audio_tokens_per_s / video_tokens_per_frame: token estimates of the clip (``agents/costs.py``).
        batch: its batch API, if any (joined from the ``BatchSpec`` naming it).
        modality: the one modality its votes rest on (offline single-modality annotators).
        calibrated: its confidence is calibrated on held-out data, so the judge does not discount it.
        output_prior: the label distribution its weights (the agent's ``model``, None = shipped)
            were trained on, or None when unknown.
    """

    name: str
    kind: Kind
    annotator: BuildAnnotator | None = None
    chat: Callable[[AgentConfig], ChatBackend] | None = None
    remote: bool = False
    api_key_env: str | None = None
    needs_model: bool = False
    needs_base_url: bool = False
    clip_modalities: frozenset[str] = frozenset()
    audio_tokens_per_s: float = 0.0
    video_tokens_per_frame: int = 0
    batch: BatchSpec | None = None
    modality: str | None = None
    calibrated: bool = False
    output_prior: Callable[[str | None], dict[str, float] | None] | None = None

    def check(self, agent: AgentConfig) -> None:
        """Raise ValueError when ``agent`` asks this provider for what it cannot do."""
        if self.needs_model and not agent.model:
            raise ValueError(f"agent {agent.name!r}: backend {self.name!r} needs 'model'")
        if self.needs_base_url and not agent.base_url:
            raise ValueError(f"agent {agent.name!r}: backend {self.name!r} needs 'base_url'")
        if agent.mode == "batch" and self.batch is None:
            batched = " or ".join(sorted(p.name for p in providers().values() if p.batch is not None))
            raise ValueError(f"agent {agent.name!r}: mode 'batch' needs backend {batched}, not {self.name!r}")
        if self.kind == "cues":
            return  # cue agents read extracted features only; clip modalities do not apply
        for modality in ("audio", "video"):
            if modality in agent.modalities and modality not in self.clip_modalities:
                able = sorted(p.name for p in providers().values() if modality in p.clip_modalities)
                raise ValueError(
                    f"agent {agent.name!r}: modality {modality!r} is not supported by backend "
                    f"{self.name!r} (supported by: {', '.join(able)})"
                )


_REGISTRY: dict[str, ProviderSpec] = {}
_FOUND = False
_LOCK = threading.RLock()


def register(spec: ProviderSpec) -> ProviderSpec:
    """Add ``spec`` (a provider declared outside the provider packages); returns it."""
    with _LOCK:
        known = _REGISTRY.get(spec.name)
        if known is not None and known is not spec:
            raise ValueError(f"provider {spec.name!r} is declared twice")
        _REGISTRY[spec.name] = spec
    return spec


def providers() -> Mapping[str, ProviderSpec]:
    """Every provider: the ``PROVIDER`` of each module in the provider packages (with the
    ``BATCH_API`` that names it), and those registered."""
    global _FOUND
    with _LOCK:
        if not _FOUND:
            batch_apis: list[BatchSpec] = []
            for package in _PACKAGES:
                for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
                    module = importlib.import_module(f"{package}.{info.name}")
                    spec = getattr(module, "PROVIDER", None)
                    if isinstance(spec, ProviderSpec):
                        register(spec)
                    batch = getattr(module, "BATCH_API", None)
                    if isinstance(batch, BatchSpec):
                        batch_apis.append(batch)
            for batch in batch_apis:
                _REGISTRY[batch.provider] = replace(_REGISTRY[batch.provider], batch=batch)
            _FOUND = True
        return dict(_REGISTRY)


def provider(name: str) -> ProviderSpec:
    """The spec of backend ``name``; an unknown name is a ValueError naming the choices."""
    spec = providers().get(name)
    if spec is None:
        raise ValueError(f"unknown backend {name!r} (choices: {', '.join(sorted(providers()))})")
    return spec


def check_agent(agent: AgentConfig) -> None:
    """ValueError when the agent's backend is unknown or cannot serve what the agent asks."""
    provider(agent.backend).check(agent)


def check_providers(config: PipelineConfig, source: str = "config") -> PipelineConfig:
    """``config`` when every agent (the jury's, the LLM judge's) suits its backend; else a
    ConfigError naming each bad agent by its YAML key, as ``load_config`` reports the rest."""
    agents = [(f"agents.jury.{i}", a) for i, a in enumerate(config.agents.jury)]
    if config.judge.llm is not None:
        agents.append(("judge.llm", config.judge.llm))
    lines = []
    for key, agent in agents:
        try:
            check_agent(agent)
        except ValueError as exc:
            lines.append(f"  {key}: Value error, {exc}")  # worded as load_config words its own
    if lines:
        raise ConfigError("\n".join([f"{source}: invalid configuration", *lines]))
    return config


def vote_sources() -> dict[str, VoteSource]:
    """Backend name -> what the consensus reads about its votes (``quality/consensus.py``)."""
    return {name: VoteSource(modality=spec.modality, calibrated=spec.calibrated) for name, spec in providers().items()}
