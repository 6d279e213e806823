"""The datasheet of a release: the questions of "Datasheets for Datasets" (Gebru et al., CACM
2021) that the corpus can answer itself, and a marker on each one a human must answer.

Every count comes from the rows as published (``flat``: what the Parquet files hold), so the
datasheet's numbers are the release's. A hidden test split gets no per-label counts: its labels
are not part of the release.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from emoforge.configs.release import ReleaseConfig
from emoforge.configs.terms import MEDIA_ACTIONS
from emoforge.release.card import cell
from emoforge.release.splits import SPLITS
from emoforge.storage.records import SegmentRow

HUMAN = "**[A human must write this.]**"
"""Marks a question the corpus cannot answer; a release is not ready while one is left."""

PROHIBITED_USES = (
    "Inferring the emotions of people at work or in education (schools, universities, exams, hiring "
    "interviews): prohibited in the EU by the AI Act, Article 5(1)(f), except for medical or safety reasons.",
    "Identifying, re-identifying or tracking the people in the clips, or sorting them into categories by "
    "their biometric data (faces and voices are biometric data under the GDPR, Article 9).",
    "Decisions about individuals (employment, credit, insurance, policing, migration, access to services) "
    "from predicted emotions: the labels are a jury's reading of a performance or a moment, not a person's "
    "inner state.",
    "Any use the licence or consent of a clip does not allow (see *Licence and terms*): research-only clips are "
    "not for commercial use.",
)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def _by_split(flat: dict[str, list[dict[str, Any]]], key: Any) -> list[list[Any]]:
    """One table row per value of ``key(row)``: its count in each split and in all."""
    counts = {s: Counter(key(r) for r in flat[s]) for s in SPLITS}
    values = sorted({v for c in counts.values() for v in c}, key=str)
    return [[*v, *[counts[s][v] for s in SPLITS], sum(counts[s][v] for s in SPLITS)] for v in values]


class Datasheet:
    """Renders the datasheet sections of a release's card."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config

    def sections(
        self,
        rows: list[SegmentRow],
        flat: dict[str, list[dict[str, Any]]],
        info: dict[str, Any],
        manifest: dict[str, Any],
    ) -> list[str]:
        parts = ["# Datasheet", "", "After Gebru et al., *Datasheets for Datasets* (CACM 2021). Sections marked "]
        parts[-1] += f"{HUMAN} are for the people who publish the release; the rest is computed from it."
        parts += ["", *self._motivation(manifest), *self._composition(flat, info)]
        parts += self._collection(rows, info, manifest) + self._processing(rows, flat, info)
        parts += self._biases(flat, info) + self._uses() + self._distribution(flat, info) + self._maintenance()
        return parts

    def _motivation(self, manifest: dict[str, Any]) -> list[str]:
        name = manifest.get("name") or "(unnamed)"
        return [
            "## Motivation",
            "",
            f"- Why was it created, by whom, and who funded it? {HUMAN}",
            f"- Corpus name in its manifest: {name}.",
            "",
        ]

    def _composition(self, flat: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> list[str]:
        total = sum(len(flat[s]) for s in SPLITS)
        sources = _by_split(flat, lambda r: (r["source"] or "(unspecified)", r["licence"] or "(unknown)", r["consent"]))
        terms = _by_split(flat, lambda r: (r["consent"], r["licence"] or "(unknown)", r["media_action"]))
        excluded = ", ".join(f"{k} {v}" for k, v in sorted(info["excluded"].items())) or "none"
        return [
            "## Composition",
            "",
            f"Each instance is one segment of a recording (start and end in seconds) with its emotion label, the "
            f"jury's confidence and, where the terms allow, a reference to its media. {total} instances: "
            + ", ".join(f"{s} {len(flat[s])}" for s in SPLITS)
            + ".",
            "",
            "### By source, licence and consent",
            "",
            _table(["source", "licence", "consent", *SPLITS, "total"], sources),
            "",
            "### By terms and what the release did with the media",
            "",
            _table(["consent", "licence", "media", *SPLITS, "total"], terms),
            "",
            "Media: copy = the file is in `media/`; link = `media_uri` says where to get it; features = labels, "
            "transcript and metadata only, no pixels, waveforms or media reference.",
            "",
            f"- Rows of the corpus left out of the release, by reason: {excluded}.",
            "- Does it hold data about identifiable people? Yes: faces and voices (biometric data under the GDPR, "
            "Article 9) wherever media is copied or linked, and emotion labels, which are inferences about those "
            "people. Speakers are "
            + ("published as salted hashes." if self.config.policy.speakers == "hash" else "published as given.")
            + f" Is anything else sensitive in the clips (health, politics, minors)? {HUMAN}",
            "",
        ]

    def _collection(self, rows: list[SegmentRow], info: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
        runs = manifest.get("runs") or []
        started = sorted(r["started_at"] for r in runs if r.get("started_at"))
        finished = sorted(r["finished_at"] for r in runs if r.get("finished_at"))
        statuses = Counter(r.get("status") or "unknown" for r in runs)
        versions = sorted({a.provenance.emoforge_version for r in rows for a in r.annotations})
        span = f"from {started[0]} to {finished[-1] if finished else 'unfinished'}" if started else "(no run records)"
        return [
            "## Collection process",
            "",
            f"- Annotation runs: {len(runs)} ({_counted(statuses) or 'none'}), {span}; config hashes of the "
            f"released rows: {', '.join(info['corpus_config_hashes']) or 'none'}; emoforge "
            f"{', '.join(versions) or '(unknown)'}.",
            f"- Recordings: {len({r.recording.id for r in rows})}, from "
            f"{len({r.recording.source for r in rows})} source(s).",
            f"- How was the media recorded or obtained, by whom, and were the people in it told and asked? {HUMAN}",
            "",
        ]

    def _processing(
        self, rows: list[SegmentRow], flat: dict[str, list[dict[str, Any]]], info: dict[str, Any]
    ) -> list[str]:
        asr = Counter(
            r.features.transcript.model or "(not recorded)" for r in rows if r.features and r.features.transcript
        )
        instructions = Counter(r.segment.instruction.version for r in rows if r.segment and r.segment.instruction)
        kinds: Counter[str] = Counter(r.segment.kind for r in rows if r.segment)
        public = [r for s in SPLITS for r in flat[s] if not (s == "test" and info["hidden_test_labels"])]
        conf = [r["confidence"] for r in public if r["confidence"] is not None]
        quality = [
            r.consensus.label_quality.score for r in rows if r.consensus and r.consensus.label_quality is not None
        ]
        verified = sum(bool(r["human_verified"]) for r in public)
        return [
            "## Preprocessing and labelling",
            "",
            f"- Segments by kind: {_counted(kinds) or 'none'}.",
            f"- ASR models (rows): {_counted(asr) or 'none'}.",
            f"- Instruction versions (rows): {_counted(instructions) or 'none'}.",
            "- Annotators, the judge and the aggregator, with their models and prompt versions: see *Models and "
            "prompt versions*; agreement statistics: see *Agreement*.",
            f"- Label quality of the {len(public)} rows whose labels are published: mean consensus confidence "
            f"{_mean(conf)}; {verified} verified by a human; mean CROWDLAB label-quality score {_mean(quality)}.",
            f"- Was the raw media kept, and who may see it? {HUMAN}",
            "",
        ]

    def _biases(self, flat: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> list[str]:
        out = ["## Known biases: distributions per split", "", "### Languages", ""]
        out += [_table(["language", *SPLITS, "total"], _by_split(flat, lambda r: (r["language"] or "(none)",))), ""]
        speakers = []
        for s in SPLITS:
            c = Counter(r["speaker"] for r in flat[s] if r["speaker"])
            top = max(c.values(), default=0)
            speakers.append([s, len(flat[s]), len(c), f"{top / len(flat[s]):.2f}" if flat[s] else "-"])
        out += ["### Speakers", "", _table(["split", "rows", "speakers", "largest speaker's share"], speakers), ""]
        labelled = [s for s in SPLITS if not (s == "test" and info["hidden_test_labels"])]
        counts = {s: Counter(r["label"] or "(none)" for r in flat[s]) for s in labelled}
        labels = sorted({lab for c in counts.values() for lab in c})
        out += [
            "### Labels",
            "",
            _table(["label", *labelled], [[lab, *[counts[s][lab] for s in labelled]] for lab in labels]),
        ]
        if len(labelled) < len(SPLITS):
            out += ["", "The test split's labels are withheld, and so is its label distribution."]
        out += [
            "",
            f"- Other known biases (who is over- or under-represented, acted or spontaneous speech): {HUMAN}",
            "",
        ]
        return out

    def _uses(self) -> list[str]:
        return [
            "## Uses",
            "",
            f"- Made for: {HUMAN}",
            "- Must not be used for:",
            *[f"  - {u}" for u in PROHIBITED_USES],
            "",
        ]

    def _distribution(self, flat: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> list[str]:
        actions = Counter(r["media_action"] for s in SPLITS for r in flat[s])
        credits = Counter(r["attribution"] for s in SPLITS for r in flat[s] if r["attribution"])
        lines = [
            "## Licence and terms",
            "",
            f"- Licence of the annotations: {self.config.licence}",
            "- Media, by what the release policy did: "
            + ", ".join(f"{a} {actions[a]}" for a in MEDIA_ACTIONS if a != "withhold")
            + f"; withheld {info['excluded'].get('withheld_by_policy', 0)}, terms unknown "
            f"{info['excluded'].get('terms_unknown', 0)} (`release.policy`).",
            "- Each row's `licence`, `consent`, `attribution` and `source_url` columns give its media's terms.",
        ]
        if credits:
            lines += ["- Attribution:", *[f"  - {name} ({n} rows)" for name, n in sorted(credits.items())]]
        return [*lines, f"- Citation: {HUMAN}", ""]

    def _maintenance(self) -> list[str]:
        return [
            "## Maintenance",
            "",
            f"- Who maintains it, how to reach them, and how a person in a clip can have it removed: {HUMAN}",
            "",
        ]


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f}" if values else "n/a"
