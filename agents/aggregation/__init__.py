"""Vote aggregators in crowd-kit's shape (``fit(df) -> self``, ``predict``, ``predict_proba``).

Input: a long table with columns ``task``, ``worker``, ``label`` (and ``weight`` for the
judge-weighted vote). ``MajorityVote`` and ``WeightedVote`` also run per segment inside
``ConsensusBuilder``; ``DawidSkene`` and ``MACE`` need the whole corpus and run in
``emoforge aggregate``.
"""

from emoforge.agents.aggregation.base import Aggregator
from emoforge.agents.aggregation.dawid_skene import DawidSkene
from emoforge.agents.aggregation.mace import MACE
from emoforge.agents.aggregation.majority import MajorityVote
from emoforge.agents.aggregation.pooled import PooledVote
from emoforge.agents.aggregation.soft import SoftVote
from emoforge.agents.aggregation.weighted import WeightedVote

AGGREGATORS: dict[str, type[Aggregator]] = {
    "majority": MajorityVote,
    "weighted": WeightedVote,
    "soft": SoftVote,
    "pooled": PooledVote,
    "dawid_skene": DawidSkene,
    "mace": MACE,
}

__all__ = ["AGGREGATORS", "MACE", "Aggregator", "DawidSkene", "MajorityVote", "PooledVote", "SoftVote", "WeightedVote"]
