"""Vote aggregators in crowd-kit's shape (``fit(df) -> self``, ``predict``, ``predict_proba``).

Input: a long table with columns ``task``, ``worker``, ``label`` and what the aggregator's
``spec.votes`` names. Each aggregator declares its name, where it runs (per segment inside
``ConsensusBuilder``, per corpus in ``emoforge aggregate``), its input shape and its
reliability attribute in ``spec`` (``aggregation/spec.py``); ``AGGREGATORS`` is the one
registry everything else reads, the config's choices included.
"""

from emoforge.configs import ConfigError
from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation.base import Aggregator
from emoforge.quality.aggregation.dawid_skene import DawidSkene
from emoforge.quality.aggregation.mace import MACE
from emoforge.quality.aggregation.majority import MajorityVote
from emoforge.quality.aggregation.pooled import PooledVote
from emoforge.quality.aggregation.soft import SoftVote
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope, Votes
from emoforge.quality.aggregation.weighted import WeightedVote


def _registry(*classes: type[Aggregator]) -> dict[str, type[Aggregator]]:
    out: dict[str, type[Aggregator]] = {}
    for cls in classes:
        # A subclass inherits its parent's spec, name included: it must declare its own.
        if "spec" not in vars(cls) or cls.spec.name in out:
            raise TypeError(f"{cls.__name__} needs a spec of its own with a name no other aggregator has")
        out[cls.spec.name] = cls
    return out


# Registering an aggregator is adding its class here.
AGGREGATORS = _registry(MajorityVote, WeightedVote, SoftVote, PooledVote, DawidSkene, MACE)


def choices(scope: Scope) -> list[str]:
    """Names of the registered aggregators that may run at ``scope``, in registry order."""
    return [name for name, cls in AGGREGATORS.items() if scope in cls.spec.scopes]


def aggregator(name: str, scope: Scope) -> type[Aggregator]:
    """The registered aggregator ``name``; a ``ConfigError`` naming the YAML key and the
    choices when there is none that runs at ``scope``."""
    cls = AGGREGATORS.get(name)
    if cls is None or scope not in cls.spec.scopes:
        names = [repr(n) for n in choices(scope)]
        listed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise ConfigError(
            f"invalid configuration\n  {scope.config_key}: Input should be {listed} "
            f"(the aggregators that run per {scope}), got {name!r}"
        )
    return cls


def check_aggregators(config: AggregationConfig) -> AggregationConfig:
    """``config`` once every aggregator it names is registered for where it runs.

    ``configs/`` sits below this package, so it takes the names as plain strings and this
    check, run where a command or flow loads its config, is what rejects a wrong one.
    """
    aggregator(config.method, Scope.SEGMENT)
    for name in config.corpus_methods:
        aggregator(name, Scope.CORPUS)
    return config


__all__ = [
    "AGGREGATORS",
    "MACE",
    "Aggregator",
    "AggregatorSpec",
    "DawidSkene",
    "MajorityVote",
    "PooledVote",
    "Scope",
    "SoftVote",
    "Votes",
    "WeightedVote",
    "aggregator",
    "check_aggregators",
    "choices",
]
