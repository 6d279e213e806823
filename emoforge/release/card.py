"""Dataset card (README.md of a release): what a user of the benchmark needs to know.

The YAML header follows the Hugging Face dataset-card convention: its ``configs`` block
names the split files, so ``datasets.load_dataset(release_dir)`` finds train/validation/test
and never mistakes the answer file for data.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

import yaml

from emoforge.configs.release import ReleaseConfig
from emoforge.release.splits import SPLITS
from emoforge.storage.records import SegmentRow, Status

# Table cells hold names from the corpus (sources, models, agents): a `|` would split the
# cell, `<`/`>` would be HTML, and `[x](y)` or `<http://...>` a link a reader might follow.
_ESCAPES = str.maketrans({
    "\\": "\\\\", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;",
    "[": "\\[", "]": "\\]", "`": "\\`",
    "\n": " ", "\r": " ",
})  # fmt: skip


def licence_unset(licence: str) -> bool:
    """True while the licence is the placeholder (``TODO: fill in``) or empty."""
    return not licence.strip() or "todo" in licence.lower()


def cell(value: Any) -> str:
    """A value as inert Markdown table text (no cell breaks, HTML or links)."""
    return "" if value is None else str(value).translate(_ESCAPES)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _flatten_stats(prefix: str, value: Any, out: list[list[str]]) -> None:
    if isinstance(value, dict):
        for k, v in sorted(value.items()):
            _flatten_stats(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, int | float | str | bool) or value is None:
        out.append([prefix, _fmt(value)])


class DatasetCard:
    """Renders README.md for a release."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config

    def render(
        self,
        rows: list[SegmentRow],
        flat: dict[str, list[dict[str, Any]]],
        info: dict[str, Any],
        manifest: dict[str, Any],
    ) -> str:
        header = {
            "license": "other",
            "license_name": self.config.licence,
            "pretty_name": manifest.get("name") or "emoforge emotion corpus",
            "task_categories": ["audio-classification", "video-classification"],
            "configs": [
                {
                    "config_name": "default",
                    "data_files": [{"split": s, "path": f"data/{s}.parquet"} for s in SPLITS if flat[s]],
                }
            ],
        }
        parts = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
        parts += [
            "# Emotion corpus release",
            "",
            "Built with emoforge: segments annotated by a jury of AI annotators, scored by a judge, "
            "aggregated into a consensus label and, where flagged, verified by humans in Label Studio.",
            "",
        ]
        if licence_unset(self.config.licence):
            parts += [
                f"> **Warning: no licence yet** (`release.licence` is {cell(self.config.licence) or 'empty'}). "
                "Nobody may reuse data without one: set it, and the media licences below, before publishing.",
                "",
            ]
        parts += self._sources(rows) + self._taxonomy(manifest) + self._counts(flat, info)
        parts += self._agreement(manifest) + self._judge(rows) + self._models(rows)
        return "\n".join(parts)

    def _sources(self, rows: list[SegmentRow]) -> list[str]:
        by_source: dict[str, set[str]] = defaultdict(set)
        segs: Counter[str] = Counter()
        for r in rows:
            name = r.recording.source or "(unspecified)"
            by_source[name].add(r.recording.id)
            segs[name] += 1
        table = _table(
            ["source", "recordings", "segments"], [[s, len(by_source[s]), segs[s]] for s in sorted(by_source)]
        )
        return ["## Sources", "", table, ""]

    def _taxonomy(self, manifest: dict[str, Any]) -> list[str]:
        runs = manifest.get("runs") or []
        config: dict[str, Any] = next((r.get("config") for r in reversed(runs) if r.get("config")), {}) or {}
        labels = config.get("agents", {}).get("taxonomy", {}).get("labels")
        text = ", ".join(cell(x) for x in labels) if labels else "(taxonomy not recorded in the corpus manifest)"
        return ["## Taxonomy", "", text, ""]

    def _counts(self, flat: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> list[str]:
        counts = info["counts"]
        labels = sorted({lab for s in SPLITS for lab in counts[s]})
        rows = [[lab, *[counts[s].get(lab, 0) for s in SPLITS]] for lab in labels]
        rows.append(["**total**", *[len(flat[s]) for s in SPLITS]])
        out = [
            "## Splits",
            "",
            f"Seed {info['seed']}; target sizes {info['split_sizes']}; grouped by recording and "
            f"{', '.join(info['group_by']) or 'nothing else'} (no group crosses splits).",
            "",
            _table(["label", *SPLITS], rows),
            "",
        ]
        empty = [s for s in SPLITS if not flat[s]]
        if empty:
            out += [
                f"Empty, so without a file (a Parquet file of no rows breaks Hugging Face `datasets`): "
                f"{', '.join(empty)}.",
                "",
            ]
        if info["hidden_test_labels"]:
            out += [
                "Test labels are withheld from `data/test.parquet` and are not part of this release; "
                "whoever holds the answer file scores predictions with "
                "`emoforge evaluate PREDICTIONS --answers test.jsonl`.",
                "",
            ]
        if info.get("duplicate_media"):
            n = sum(len(r) for r in info["duplicate_media"].values())
            out += [
                f"{n} recording ids share media with another ({len(info['duplicate_media'])} distinct files); "
                "each such set is kept in one split.",
                "",
            ]
        if info["excluded"]:
            out += ["Rows left out: " + ", ".join(f"{k} {v}" for k, v in sorted(info["excluded"].items())), ""]
        return out

    def _agreement(self, manifest: dict[str, Any]) -> list[str]:
        stats = manifest.get("stats") or {}
        flat: list[list[str]] = []
        for key in sorted(stats):
            if "agreement" in key:
                _flatten_stats(key, stats[key], flat)
        body = _table(["statistic", "value"], flat) if flat else "No agreement statistics recorded yet."
        return ["## Agreement", "", body, ""]

    def _judge(self, rows: list[SegmentRow]) -> list[str]:
        scores: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for v in r.verdicts:
                if v.status == Status.ok:  # failed judgements carry placeholder zeros
                    scores[v.judge].append(v.s_final)
        if not scores:
            return ["## Judge scores", "", "No verdicts in the released rows.", ""]
        table = []
        for judge, vals in sorted(scores.items()):
            q = statistics.quantiles(vals, n=4) if len(vals) > 1 else [vals[0]] * 3
            table.append([judge, len(vals), _fmt(statistics.fmean(vals)), _fmt(q[0]), _fmt(q[1]), _fmt(q[2])])
        return ["## Judge scores (s_final)", "", _table(["judge", "n", "mean", "q25", "median", "q75"], table), ""]

    def _models(self, rows: list[SegmentRow]) -> list[str]:
        seen: Counter[tuple[str, str, str, str]] = Counter()
        for r in rows:
            for a in r.annotations:
                p = a.provenance
                seen[(f"annotator {a.agent}", a.backend, p.model or "-", p.prompt_version or "-")] += 1
            for v in r.verdicts:
                p = v.provenance
                seen[(f"judge {v.judge}", p.stage, p.model or "-", p.prompt_version or "-")] += 1
            if r.consensus:
                p = r.consensus.provenance
                seen[("aggregator", r.consensus.method, p.model or "-", p.prompt_version or "-")] += 1
        rows_out = [[*k, n] for k, n in sorted(seen.items())]
        return [
            "## Models and prompt versions",
            "",
            _table(["role", "backend/method", "model", "prompt version", "records"], rows_out),
            "",
        ]
