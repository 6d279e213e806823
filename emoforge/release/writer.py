"""Benchmark release: one Parquet file per split, hidden test answers, checksums, dataset card.

Layout of a release directory (the folder that is published)::

    data/train.parquet data/validation.parquet data/test.parquet   flat rows (RELEASE_SCHEMA)
    README.md                 dataset card (its YAML header tells HF `datasets` the splits)
    release.json              seed, split sizes, groups, duplicate media, config hashes
    SHA256SUMS                `sha256sum -c` compatible checksums of every other file

The hidden test answers go to a separate folder that is not published (``--answers-out``,
default ``<out>-answers/``): ``test.jsonl`` (labels and reference rationales) and its own
``SHA256SUMS``. A release folder that holds an ``answers/`` folder, or a symlink anywhere
(a symlinked ``data/`` would write the split files wherever it points), is refused.

The Parquet files use an explicit Arrow schema of plain columns, so pandas, duckdb and
Hugging Face ``datasets`` read them without emoforge.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from emoforge.configs.release import ReleaseConfig
from emoforge.release.hidden import label_leaks, make_opaque, opaque_groups
from emoforge.release.policy import Decision, PolicyCount, PolicyGate, copy_media, policy_counts, published_media
from emoforge.release.pseudonyms import SpeakerHasher
from emoforge.release.splits import SPLITS, SplitAssigner, release_label
from emoforge.storage.inputs import publishable_paths
from emoforge.storage.records import Annotation, Record, SegmentRow, Status

_ANNOTATOR = pa.struct([("agent", pa.string()), ("label", pa.string()), ("confidence", pa.float64())])
RELEASE_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("recording_id", pa.string()),
        ("media_uri", pa.string()),
        ("media_sha256", pa.string()),
        ("source", pa.string()),
        ("speaker", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("segment_kind", pa.string()),
        ("transcript", pa.string()),
        ("language", pa.string()),
        ("modalities", pa.list_(pa.string())),
        ("label", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("confidence", pa.float64()),
        ("entropy", pa.float64()),
        ("agreement", pa.float64()),
        ("intensity", pa.float64()),
        ("valence", pa.float64()),
        ("arousal", pa.float64()),
        ("human_verified", pa.bool_()),
        ("judge_score", pa.float64()),
        ("rationale", pa.list_(pa.string())),
        ("evidence_modalities", pa.list_(pa.string())),
        ("annotators", pa.list_(_ANNOTATOR)),
        # The clip's terms and what the release policy did with its media (emoforge/release/policy.py).
        ("licence", pa.string()),
        ("consent", pa.string()),
        ("attribution", pa.string()),
        ("source_url", pa.string()),
        ("media_action", pa.string()),
    ]
)
"""Columns of a released split; the test split drops ``HIDDEN_COLUMNS`` when labels are hidden."""

HIDDEN_COLUMNS = (
    "label",
    "labels",
    "confidence",
    "entropy",
    "agreement",
    "intensity",
    "valence",
    "arousal",
    "human_verified",
    "judge_score",
    "rationale",
    "evidence_modalities",
    "annotators",
)
ANSWER_COLUMNS = ("row_id", "label", "labels", "intensity", "valence", "arousal", "rationale", "modalities")


class ReleaseError(ValueError):
    """The release cannot be written safely where asked (symlinks, answers inside it)."""


class ReleaseSummary(Record):
    out: str = Field(description="Release directory.")
    answers: str | None = Field(None, description="Folder holding the hidden test answers (not published).")
    counts: dict[str, dict[str, int]] = Field(description="split -> label -> rows.")
    excluded: dict[str, int] = Field(description="Reason -> rows left out of the release.")
    hidden_test_labels: bool = Field(description="Test labels were moved to the answers folder.")
    files: dict[str, str] = Field(description="Relative path -> sha256.")
    warnings: list[str] = Field(default_factory=list, description="Degenerate outcomes worth a look.")
    policy: list[PolicyCount] = Field(
        default_factory=list, description="What release.policy did, per consent and licence class."
    )


def exclusion_reason(row: SegmentRow, config: ReleaseConfig) -> str | None:
    """Why a row stays out of the release (None: it goes in)."""
    if row.segment is None:
        return "no_segment"
    if not config.only_ok:
        return None
    if row.status != Status.ok:
        return f"status_{row.status.value}"
    if release_label(row) is None:
        return "no_label"
    verified = any(h.label for h in row.human)
    if row.consensus is not None and row.consensus.needs_review and not (verified or config.include_review_flagged):
        return "needs_review"
    return None


def _reference(row: SegmentRow, label: str | None) -> Annotation | None:
    """The annotation whose rationale is published: best judged among those agreeing with the label."""
    score = {v.annotation_id: v.s_final for v in row.verdicts}
    ok = [a for a in row.annotations if a.status == Status.ok]
    agreeing = [a for a in ok if a.primary_label == label] or ok
    return max(agreeing, key=lambda a: (score.get(a.id, -1.0), a.id), default=None)


def flatten(row: SegmentRow, media_uri: str | None = None) -> dict[str, Any]:
    """One release row (RELEASE_SCHEMA columns) from a shard row; ``media_uri`` is the path
    published for its recording (default: the uri as stored)."""
    seg, cons, feats = row.segment, row.consensus, row.features
    label = release_label(row)
    human = next((h for h in sorted(row.human, key=lambda h: h.reviewed_at, reverse=True) if h.label), None)
    ref = _reference(row, label)
    scores = [v.s_final for v in row.verdicts if v.status == Status.ok]
    transcript = feats.transcript if feats else None
    return {
        "row_id": row.row_id,
        "recording_id": row.recording.id,
        "media_uri": row.recording.uri if media_uri is None else media_uri,
        "media_sha256": row.recording.sha256,
        "source": row.recording.source,
        "speaker": row.recording.speaker,
        "start_s": seg.start_s if seg else None,
        "end_s": seg.end_s if seg else None,
        "segment_kind": seg.kind if seg else None,
        "transcript": transcript.text if transcript else None,
        "language": transcript.language if transcript else None,
        "modalities": feats.modalities if feats else [],
        "label": label,
        "labels": (human.labels or [label]) if human else (cons.labels if cons else []),
        "confidence": cons.confidence if cons else None,
        "entropy": cons.entropy if cons else None,
        "agreement": cons.agreement if cons else None,
        "intensity": human.intensity if human and human.intensity is not None else (cons.intensity if cons else None),
        "valence": human.valence if human and human.valence is not None else (cons.valence if cons else None),
        "arousal": cons.arousal if cons else None,
        "human_verified": human is not None,
        "judge_score": sum(scores) / len(scores) if scores else None,
        "rationale": ref.rationale if ref else [],
        "evidence_modalities": sorted({c.modality for c in ref.evidence}) if ref else [],
        "annotators": [
            {"agent": a.agent, "label": a.primary_label, "confidence": a.confidence}
            for a in row.annotations
            if a.status == Status.ok
        ],
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def default_answers_dir(out: Path) -> Path:
    """Where hidden answers go unless told: next to the release folder, never inside it."""
    return out.parent / f"{out.name}-answers"


def _check_targets(out: Path, answers: Path | None) -> None:
    """Refuse symlinks inside the release and answers inside the published folder."""
    if out.is_symlink():
        raise ReleaseError(f"{out} is a symlink: give the real release folder")
    for dirpath, dirnames, filenames in os.walk(out, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ReleaseError(f"{path} is a symlink: a release folder must hold only real files and folders")
    if (out / "answers").exists():
        raise ReleaseError(f"{out / 'answers'} exists: hidden answers must not be published; remove it")
    if answers is not None:
        if answers.is_symlink():
            raise ReleaseError(f"{answers} is a symlink: give the real answers folder")
        resolved_out, resolved_answers = out.resolve(), answers.resolve()
        if resolved_answers == resolved_out or resolved_out in resolved_answers.parents:
            raise ReleaseError(f"--answers-out {answers} is inside the release folder {out}: it would be published")


def _write_sums(folder: Path) -> dict[str, str]:
    files = {
        p.relative_to(folder).as_posix(): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "SHA256SUMS"
    }
    (folder / "SHA256SUMS").write_text("".join(f"{h}  {name}\n" for name, h in files.items()))
    return files


class ReleaseWriter:
    """Writes a benchmark release from corpus rows (see the module docstring)."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config

    def write(
        self,
        rows: list[SegmentRow],
        out: str | Path,
        manifest: dict[str, Any] | None = None,
        answers_out: str | Path | None = None,
        allow_unknown: bool = False,
        salt: bytes | None = None,
    ) -> ReleaseSummary:
        """Write the release to ``out`` and, when test labels are hidden, the answers to
        ``answers_out`` (default :func:`default_answers_dir`). Raises ``ReleaseError``.

        Rows pass ``release.policy`` one by one (``emoforge/release/policy.py``): rows whose
        terms are unknown are withheld unless ``allow_unknown``. Speakers are published as
        hashes salted with ``salt`` (the corpus's: ``pseudonyms.corpus_salt``; None: a fresh
        one, so hashes differ from any other export) unless the policy keeps them."""
        from emoforge.release.card import DatasetCard, licence_unset
        from emoforge.release.datasheet import Datasheet

        out = Path(out)
        hide = self.config.hide_test_labels
        answers = (Path(answers_out) if answers_out else default_answers_dir(out)) if hide else None
        _check_targets(out, answers)
        (out / "data").mkdir(parents=True, exist_ok=True)
        excluded: Counter[str] = Counter()
        kept = []
        for row in rows:
            reason = exclusion_reason(row, self.config)
            if reason is None:
                kept.append(row)
            else:
                excluded[reason] += 1
        kept, decisions, by_terms = self._apply_policy(kept, excluded, allow_unknown, salt)
        kept.sort(key=lambda r: r.row_id)
        assignment = SplitAssigner(self.config).assign(kept)
        # Paths relative to the corpus's media folder: a release never names the machine's
        # absolute paths or a private bucket.
        published = publishable_paths(r.recording.uri for r in kept)
        copied: dict[str, str] = {}

        def release_row(r: SegmentRow) -> dict[str, Any]:
            decision = decisions[r.row_id]
            try:
                copy = copy_media(r.recording, out, copied) if decision.action == "copy" else None
            except OSError as exc:
                raise ReleaseError(f"{r.recording.uri}: the policy copies its media, but: {exc}") from exc
            media = published_media(r.recording, decision, published[r.recording.uri], copy)
            return {**flatten(r, published[r.recording.uri]), **media}

        flat = {s: [release_row(r) for r in kept if assignment.splits[r.row_id] == s] for s in SPLITS}
        groups = {s: sorted({assignment.groups[r["row_id"]] for r in flat[s]}) for s in SPLITS}
        leaks, opaque_key, media_map = self._hide_names(flat, hide)
        if opaque_key is not None:  # the hidden split's group names are folder and file names too
            groups["test"] = opaque_groups(groups["test"], opaque_key)
        for split, records in flat.items():
            path = out / "data" / f"{split}.parquet"
            if not records:
                # HF `datasets` sizes its read batches from row groups: a file of 0 rows fails
                # there ("BatchSize must be greater than 0"), one with no row group too ("corresponds
                # to no data"). An empty split has no file, and the card lists only the others.
                path.unlink(missing_ok=True)
                continue
            table = pa.Table.from_pylist(records, schema=RELEASE_SCHEMA)
            if split == "test" and hide:
                table = table.drop_columns(list(HIDDEN_COLUMNS))
            pq.write_table(table, path, compression="zstd")
        if answers is not None:
            answers.mkdir(parents=True, exist_ok=True)
            with open(answers / "test.jsonl", "w", encoding="utf-8") as fh:
                for rec in flat["test"]:
                    answer = {k: rec[k] for k in ANSWER_COLUMNS}
                    answer["rationale"] = " ".join(rec["rationale"])
                    fh.write(json.dumps(answer, ensure_ascii=False) + "\n")
            if media_map:  # private: which corpus file each opaque test media name stands for
                with open(answers / "test_media.jsonl", "w", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(m, ensure_ascii=False) + "\n" for m in media_map)
            _write_sums(answers)
        counts = {s: dict(Counter(r["label"] or "(none)" for r in flat[s])) for s in SPLITS}
        if hide:  # per-label counts of a hidden split would publish its label distribution
            counts["test"] = {"(hidden)": len(flat["test"])} if flat["test"] else {}
        info = {
            "seed": self.config.seed,
            "split_sizes": self.config.splits.as_dict(),
            "group_by": list(self.config.group_by),
            "hidden_test_labels": hide,
            "counts": counts,
            "excluded": dict(excluded),
            "groups": groups,
            "duplicate_media": assignment.duplicates,
            "corpus_config_hashes": sorted({r.config_hash for r in kept}),
            "policy": [c.model_dump(mode="json") for c in by_terms],
        }
        (out / "release.json").write_text(json.dumps(info, indent=2, sort_keys=True))
        card_rows = kept
        if opaque_key is not None:  # the card's per-source counts minus the public splits' would give test's
            test_ids = {r.row_id for r in kept if assignment.splits[r.row_id] == "test"}
            card_rows = [_without_source(r) if r.row_id in test_ids else r for r in kept]
        card = DatasetCard(self.config).render(card_rows, flat, info, manifest or {})
        card += "\n" + "\n".join(Datasheet(self.config).sections(card_rows, flat, info, manifest or {}))
        (out / "README.md").write_text(card, encoding="utf-8")
        files = _write_sums(out)
        warnings = []
        empty = [s for s in SPLITS if not flat[s] and self.config.splits.as_dict()[s] > 0]
        if kept and empty:
            n_groups = len(set(assignment.groups.values()))
            warnings.append(
                f"split(s) {', '.join(empty)} empty: {len(kept)} rows form only {n_groups} group(s) under "
                f"group_by={list(self.config.group_by)} (rows sharing a recording, source or speaker stay together); "
                "an empty split has no file"
            )
        if licence_unset(self.config.licence):
            warnings.append(
                f"licence is still {self.config.licence!r}: set release.licence before publishing (the card says so)"
            )
        unknown = sum(c.rows for c in by_terms if c.reason == "terms_unknown")
        if unknown:
            warnings.append(
                f"{unknown} rows withheld: their licence or consent is unknown (give them terms in the manifest, a "
                "terms file or inputs.terms, or pass --allow-unknown to publish them under release.policy.unknown)"
            )
        if leaks:
            done = "published under opaque ids" if opaque_key is not None else "published as they are"
            warnings.append(
                f"{len(leaks)} hidden test rows name a label (e.g. {leaks[0]}): {done}; "
                "release.hidden_ids: opaque hides them (auto does when it finds this)"
            )
        for digest, recordings in assignment.duplicates.items():
            warnings.append(
                f"identical media under {len(recordings)} recording ids ({', '.join(recordings)}; "
                f"sha256 {digest[:12]}): kept in one split"
            )
        return ReleaseSummary(
            out=str(out),
            answers=str(answers) if answers else None,
            counts=counts,
            excluded=dict(excluded),
            hidden_test_labels=hide,
            files=files,
            warnings=warnings,
            policy=by_terms,
        )

    def _apply_policy(
        self, rows: list[SegmentRow], excluded: Counter[str], allow_unknown: bool, salt: bytes | None
    ) -> tuple[list[SegmentRow], dict[str, Decision], list[PolicyCount]]:
        """The rows the policy lets out (speakers hashed unless kept) and each one's decision;
        withheld rows are counted in ``excluded`` by reason."""
        gate = PolicyGate(self.config.policy, allow_unknown)
        decided = [(r, gate.decide(r.recording.terms)) for r in rows]
        counts = policy_counts((r.recording, d) for r, d in decided)
        hasher = SpeakerHasher(salt or secrets.token_bytes(32)) if self.config.policy.speakers == "hash" else None
        out, decisions = [], {}
        for row, decision in decided:
            if decision.action == "withhold":
                excluded["terms_unknown" if decision.reason == "terms_unknown" else "withheld_by_policy"] += 1
                continue
            if hasher is not None:
                # Before the splits: groups and every published file see only the hash.
                recording = row.recording.model_copy(update={"speaker": hasher(row.recording.speaker)})
                row = row.model_copy(update={"recording": recording})
            out.append(row)
            decisions[row.row_id] = decision
        return out, decisions, counts

    def _hide_names(
        self, flat: dict[str, list[dict[str, Any]]], hide: bool
    ) -> tuple[list[str], bytes | None, list[dict[str, str]]]:
        """Rename the hidden split's rows in ``flat`` (``hidden.py``) when asked, or when their
        names spell labels; returns the leaking rows' examples, the random key (None: names
        kept) and the private map of opaque media names."""
        if not hide:
            return [], None, []
        labels = {lab for s in SPLITS for r in flat[s] for lab in [r["label"], *(r["labels"] or [])] if lab}
        leaks = label_leaks(flat["test"], labels)
        policy = self.config.hidden_ids
        if policy == "keep" or (policy == "auto" and not leaks) or not flat["test"]:
            return leaks, None, []
        key = secrets.token_bytes(32)
        flat["test"], media_map = make_opaque(flat["test"], key)
        return leaks, key, media_map


def _without_source(row: SegmentRow) -> SegmentRow:
    return row.model_copy(update={"recording": row.recording.model_copy(update={"source": None})})


def verify_release(out: str | Path) -> list[str]:
    """Checksum problems of a release directory (empty list: all files match SHA256SUMS)."""
    out = Path(out)
    problems = []
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        path = out / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != digest:
            problems.append(f"{name}: sha256 mismatch")
    return problems
