"""A run's config: read from YAML, then checked against what the packages above ``configs/``
declare.

``configs/`` sits below the providers (``agents/providers.py``) and the aggregators
(``emoforge/quality/aggregation``), so it takes their names as plain strings; every entry
point loads its config here, so a wrong name fails before anything runs or is paid for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emoforge.agents.providers import check_providers
from emoforge.configs import PipelineConfig, load_config
from emoforge.quality.aggregation import check_aggregators


def load_checked(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """``load_config(path, overrides)`` once every provider and aggregator it names is
    registered and suits its use; else the ``ConfigError`` naming the YAML key and the choices."""
    config = load_config(path, overrides)
    check_aggregators(config.aggregation)
    return check_providers(config, str(path or "default.yaml"))
