"""Cost and quality of the release step on synthetic corpora: split assignment and writing.

For corpora of G speaker groups (1-6 segments each, 7 labels drawn at random) it reports the
split sizes reached, the largest gap between a split's label share and the corpus's, and the
seconds to assign splits and to write a full release (Parquet, answers, card, checksums).

    .venv/bin/python benchmarks/bench_release.py [--groups 30 400 2000] [--out benchmarks/results/release.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoforge.configs.release import ReleaseConfig  # noqa: E402
from emoforge.release.splits import SPLITS, SplitAssigner, release_label  # noqa: E402
from emoforge.release.writer import ReleaseWriter  # noqa: E402
from tests.release.factory import TAXONOMY, make_row  # noqa: E402


def run(groups: int) -> dict[str, object]:
    rng = random.Random(1)
    rows = [
        make_row(f"rec{i:05d}", j, rng.choice(TAXONOMY), speaker=f"spk{i}")
        for i in range(groups)
        for j in range(rng.randint(1, 6))
    ]
    cfg = ReleaseConfig(group_by=["speaker"])
    t0 = time.perf_counter()
    assignment = SplitAssigner(cfg).assign(rows)
    assign_s = time.perf_counter() - t0
    overall = Counter(release_label(r) for r in rows)
    gap = 0.0
    for split in SPLITS:
        got = Counter(release_label(r) for r in rows if assignment.splits[r.row_id] == split)
        n = sum(got.values())
        gap = max(gap, *(abs(got[lab] / n - c / len(rows)) for lab, c in overall.items()))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ReleaseWriter(cfg).write(rows, Path(tmp) / "release")
        write_s = time.perf_counter() - t0
    return {
        "groups": groups,
        "rows": len(rows),
        "sizes": dict(Counter(assignment.splits.values())),
        "max_label_share_gap": round(gap, 4),
        "assign_s": round(assign_s, 2),
        "write_release_s": round(write_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, nargs="+", default=[30, 400, 2000])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "release.json")
    args = parser.parse_args()
    results = [run(g) for g in args.groups]
    payload = {"machine": platform.platform(), "python": platform.python_version(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
