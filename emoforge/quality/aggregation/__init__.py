"""Vote aggregators in crowd-kit's shape (``fit(df) -> self``, ``predict``, ``predict_proba``).

Input: a long table with columns ``task``, ``worker``, ``label`` (and ``weight`` for the
judge-weighted vote). ``MajorityVote`` and ``WeightedVote`` also run per segment inside
``ConsensusBuilder``; ``DawidSkene`` and ``MACE`` need the whole corpus and run in
``emoforge aggregate``.
"""

from emoforge.quality.aggregation.base import Aggregator
from emoforge.quality.aggregation.dawid_skene import DawidSkene
from emoforge.quality.aggregation.mace import MACE
from emoforge.quality.aggregation.majority import MajorityVote
from emoforge.quality.aggregation.pooled import PooledVote
from emoforge.quality.aggregation.soft import SoftVote
from emoforge.quality.aggregation.weighted import WeightedVote

AGGREGATORS: dict[str, type[Aggregator]] = {
    "majority": MajorityVote,
    "weighted": WeightedVote,
    "soft": SoftVote,
    "pooled": PooledVote,
    "dawid_skene": DawidSkene,
    "mace": MACE,
}

__all__ = ["AGGREGATORS", "MACE", "Aggregator", "DawidSkene", "MajorityVote", "PooledVote", "SoftVote", "WeightedVote"]
