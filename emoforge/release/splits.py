"""Benchmark splits: stratified by label, grouped so no media, source or speaker crosses splits.

Grouping: rows that share a recording or the recording's content hash (byte-identical media
under two names is one recording, else it leaks from train into test), or (per
``release.group_by``) a source or a speaker, are joined with union-find into one group; a
group is placed whole. Content hashes shared by several recording ids are reported as
``SplitAssignment.duplicates``.

Placement minimises a chi-square distance to the targets,

    cost = sum_{s, l} (n[s, l] - p_s N_l)^2 / (p_s N_l) + L * sum_s (n[s] - p_s N)^2 / (p_s N)

where ``n[s, l]`` counts label ``l`` (of ``L`` labels, ``N_l`` rows each) in split ``s``,
``n[s]`` the split's rows and ``p_s`` its target share: the first term keeps each split's
label mix close to the corpus's, the second its size close to target. Groups are shuffled
with the seed, taken largest first, and each goes to the split where the cost after adding
it is lowest (ties: the split furthest below its target size); then pairs of groups in
different splits are swapped while a swap lowers the cost (skipped for more than
``MAX_REFINE_GROUPS`` groups). When the groups left are only just enough to give every
still-empty split (target > 0) one group, each goes to an empty split, so no split ends up
empty when labels and groups are confounded. Same rows + same seed give the same result.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from pydantic import Field

from emoforge.configs.release import ReleaseConfig
from emoforge.storage.records import Record, SegmentRow

SPLITS = ("train", "validation", "test")
MAX_REFINE_GROUPS = 400
MAX_REFINE_PASSES = 3


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
    duplicates: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Media sha256 -> the recording ids with those exact bytes (only hashes with 2 or more).",
    )

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

    @staticmethod
    def duplicates(rows: Sequence[SegmentRow]) -> dict[str, list[str]]:
        """Media sha256 -> recording ids, for content that appears under more than one id."""
        ids: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            if row.recording.sha256:
                ids[row.recording.sha256].add(row.recording.id)
        return {h: sorted(r) for h, r in sorted(ids.items()) if len(r) > 1}

    def _groups(self, rows: Sequence[SegmentRow]) -> dict[str, str]:
        uf = _UnionFind()
        for row in rows:
            keys = [f"recording:{row.recording.id}"]
            if row.recording.sha256:
                keys.append(f"media:{row.recording.sha256}")
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

        labels_of = {g: Counter(release_label(r) or "(none)" for r in members[g]) for g in order}
        active = [s for s in SPLITS if targets[s] > 0]
        if not active:
            raise ValueError("release.splits gives every split a size of 0")
        n_labels = len(label_total)

        def cost(counts: dict[str, Counter[str]], sizes: Counter[str]) -> float:
            c = 0.0
            for s in active:
                for label, n_label in label_total.items():
                    expected = targets[s] * n_label
                    c += (counts[s][label] - expected) ** 2 / expected
                c += n_labels * (sizes[s] - targets[s] * total) ** 2 / (targets[s] * total)
            return c

        counts: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        sizes: Counter[str] = Counter()
        placed: dict[str, str] = {}
        for pos, gid in enumerate(order):
            empty = [s for s in active if sizes[s] == 0]
            allowed = empty if empty and len(order) - pos <= len(empty) else active
            best: tuple[float, float, str] | None = None
            for split in allowed:
                counts[split].update(labels_of[gid])
                sizes[split] += len(members[gid])
                key = (round(cost(counts, sizes), 9), sizes[split] / total - targets[split], split)
                counts[split].subtract(labels_of[gid])
                sizes[split] -= len(members[gid])
                if best is None or key < best:
                    best = key
            if best is None:  # unreachable: ``allowed`` always holds an active split
                raise RuntimeError("no split to place a group in")
            placed[gid] = best[2]
            counts[best[2]].update(labels_of[gid])
            sizes[best[2]] += len(members[gid])
        if len(order) <= MAX_REFINE_GROUPS:
            self._refine(order, placed, labels_of, members, counts, sizes, cost)
        return SplitAssignment(
            seed=self.config.seed,
            splits={r.row_id: placed[group_of[r.row_id]] for r in rows},
            groups={r.row_id: group_of[r.row_id] for r in rows},
            duplicates=self.duplicates(rows),
        )

    @staticmethod
    def _refine(
        order: list[str],
        placed: dict[str, str],
        labels_of: dict[str, Counter[str]],
        members: dict[str, list[SegmentRow]],
        counts: dict[str, Counter[str]],
        sizes: Counter[str],
        cost: Callable[[dict[str, Counter[str]], Counter[str]], float],
    ) -> None:
        """Swap pairs of groups across splits while a swap lowers the cost (in place)."""
        current = cost(counts, sizes)
        for _ in range(MAX_REFINE_PASSES):
            improved = False
            for i, g1 in enumerate(order):
                for g2 in order[i + 1 :]:
                    s1, s2 = placed[g1], placed[g2]
                    if s1 == s2:
                        continue
                    for s_from, s_to, g in ((s1, s2, g1), (s2, s1, g2)):
                        counts[s_from].subtract(labels_of[g])
                        counts[s_to].update(labels_of[g])
                        sizes[s_from] -= len(members[g])
                        sizes[s_to] += len(members[g])
                    new = cost(counts, sizes)
                    if new < current - 1e-9:
                        placed[g1], placed[g2], current, improved = s2, s1, new, True
                        continue
                    for s_from, s_to, g in ((s2, s1, g1), (s1, s2, g2)):
                        counts[s_from].subtract(labels_of[g])
                        counts[s_to].update(labels_of[g])
                        sizes[s_from] -= len(members[g])
                        sizes[s_to] += len(members[g])
            if not improved:
                return
