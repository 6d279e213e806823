"""The ``emoforge evaluate --corpus --agent`` workflow: which config re-asks the agent, and the
re-asks themselves (``FaithfulnessEvaluator``) on the corpus's rows.

A corpus's stored run config was written by whoever made the corpus, so without the user's
own ``--config`` it may not name a server, an API key variable or a cache path unless the
user trusts the corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emoforge.configs import PipelineConfig

if TYPE_CHECKING:
    from emoforge.release.faithfulness import MeasuredFaithfulness


class ReaskRefused(ValueError):
    """The agent cannot be re-asked as asked; the message says why and what to pass."""


def stored_config(corpus: str, trusted: bool) -> PipelineConfig:
    """The newest run config in ``corpus``'s manifest, as far as it may be used untrusted.

    Raises ``ReaskRefused`` when there is none, it does not load, or it names a server or key
    variable of an agent and ``trusted`` is false. Untrusted, its cache path is dropped, so the
    re-asks' answers stay in the corpus's own cache.
    """
    from emoforge.configs import ConfigError
    from emoforge.storage.shards import read_manifest

    runs = read_manifest(corpus).get("runs") or []
    stored = next((r.get("config") for r in reversed(runs) if r.get("config")), None)
    if not stored:
        raise ReaskRefused(f"{corpus}: no run config in the manifest; pass --config")
    try:
        cfg = PipelineConfig.model_validate(stored)
    except (ValueError, ConfigError) as exc:
        raise ReaskRefused(
            f"{corpus}: the stored run config does not load ({str(exc).splitlines()[0]}); pass --config"
        ) from exc
    named = [a.name for a in cfg.agents.jury if a.enabled and (a.base_url or a.api_key_env)]
    if named and not trusted:
        raise ReaskRefused(
            f"{corpus}: its stored config names a server or API key variable for {', '.join(named)}; "
            "pass your own --config (or --trust-corpus-config for a corpus you made)"
        )
    if not trusted and cfg.agents.cache.path:
        cache = cfg.agents.cache.model_copy(update={"path": None})
        cfg = cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"cache": cache})})
    return cfg


def with_budget(cfg: PipelineConfig, budget_usd: float | None) -> PipelineConfig:
    """``cfg`` with the re-asks' spending capped at ``budget_usd`` (unchanged for None)."""
    if budget_usd is None:
        return cfg
    return cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"budget_usd": budget_usd})})


def measure_faithfulness(
    corpus: str, agent: str, cfg: PipelineConfig, include_paid: bool, items: dict[str, dict[str, Any]]
) -> MeasuredFaithfulness:
    """Re-ask ``agent`` on ``corpus``'s rows of ``items``; raises ``ValueError`` when it cannot."""
    from emoforge.flows.incremental import response_cache_dir
    from emoforge.release.faithfulness import FaithfulnessEvaluator
    from emoforge.storage.shards import read_rows

    cache = Path(response_cache_dir(corpus, cfg.agents.cache.path))
    measured, _ = FaithfulnessEvaluator(cfg, agent, include_paid, cache).run(read_rows(corpus), items)
    return measured
