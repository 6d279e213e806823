"""Benchmark splits: stratified by label, grouped so no source or speaker crosses splits.

Grouping: rows that share a recording, or (per ``release.group_by``) a source or a speaker,
are joined with union-find into one group; a group is placed whole. Placement is greedy and
seeded, like scikit-learn's StratifiedGroupKFold: groups are shuffled with the seed, then
taken largest first, and each goes to the split that minimises

    cost = sum_{s, l} (n[s, l] / N_l - p_s)^2 + sum_s (n[s] / N - p_s)^2

after adding it, where ``n[s, l]`` counts label ``l`` in split ``s``, ``N_l`` the label's
total and ``p_s`` the split's target share: label proportions and split sizes both stay close
to target. Ties go to the split furthest below its target size. Same rows + same seed give
the same assignment.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from pydantic import Field

from emoforge.configs.release import ReleaseConfig
from emoforge.storage.records import Record, SegmentRow

SPLITS = ("train", "validation", "test")


def release_label(row: SegmentRow) -> str | None:
    """The label a release publishes: the latest human verification, else the consensus."""
    for human in sorted(row.human, key=lambda h: h.reviewed_at, reverse=True):
        if human.label:
            return human.label
    return row.consensus.primary_label if row.consensus else None


class SplitAssignment(Record):
    """Which split each row went to, and the groups that decided it."""

    seed: int = Field(description="Seed used.")
    splits: dict[str, str] = Field(description="row_id -> split name.")
    groups: dict[str, str] = Field(description="row_id -> group id (rows of one group share a split).")

    def rows_in(self, split: str) -> list[str]:
        return [rid for rid, s in self.splits.items() if s == split]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Smaller name wins so the group id does not depend on row order.
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


class SplitAssigner:
    """Assigns rows to train/validation/test (see the module docstring)."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config

    def _groups(self, rows: Sequence[SegmentRow]) -> dict[str, str]:
        uf = _UnionFind()
        for row in rows:
            keys = [f"recording:{row.recording.id}"]
            if "source" in self.config.group_by and row.recording.source:
                keys.append(f"source:{row.recording.source}")
            if "speaker" in self.config.group_by and row.recording.speaker:
                keys.append(f"speaker:{row.recording.speaker}")
            uf.find(f"row:{row.row_id}")
            for key in keys:
                uf.union(f"row:{row.row_id}", key)
        return {row.row_id: uf.find(f"row:{row.row_id}") for row in rows}

    def assign(self, rows: Sequence[SegmentRow]) -> SplitAssignment:
        """Place every row in a split; rows without a label are stratified as '(none)'."""
        group_of = self._groups(rows)
        members: dict[str, list[SegmentRow]] = defaultdict(list)
        for row in rows:
            members[group_of[row.row_id]].append(row)
        targets = self.config.splits.as_dict()
        label_total: Counter[str] = Counter(release_label(r) or "(none)" for r in rows)
        total = max(len(rows), 1)

        order = sorted(members)
        random.Random(self.config.seed).shuffle(order)
        order.sort(key=lambda g: -len(members[g]))  # stable: the shuffle breaks size ties

        counts: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        sizes: Counter[str] = Counter()
        placed: dict[str, str] = {}
        for gid in order:
            group_labels = Counter(release_label(r) or "(none)" for r in members[gid])
            best: tuple[float, float, str] | None = None
            for split in SPLITS:
                if targets[split] <= 0:
                    continue
                cost = 0.0
                for s in SPLITS:
                    extra = group_labels if s == split else Counter()
                    for label, n_label in label_total.items():
                        cost += ((counts[s][label] + extra[label]) / n_label - targets[s]) ** 2
                    size = sizes[s] + (len(members[gid]) if s == split else 0)
                    cost += (size / total - targets[s]) ** 2
                deficit = sizes[split] / total - targets[split]
                key = (round(cost, 12), deficit, split)
                if best is None or key < best:
                    best = key
            if best is None:
                raise ValueError("release.splits gives every split a size of 0")
            split = best[2]
            placed[gid] = split
            counts[split].update(group_labels)
            sizes[split] += len(members[gid])
        return SplitAssignment(
            seed=self.config.seed,
            splits={r.row_id: placed[group_of[r.row_id]] for r in rows},
            groups={r.row_id: group_of[r.row_id] for r in rows},
        )
