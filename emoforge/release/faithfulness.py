"""Measured faithfulness of submitted predictions: re-ask the named agent on the corpus.

``emoforge evaluate`` alone can only average the ``sufficiency`` / ``necessity`` that a
submitter computed, because only the model that gave a prediction can be re-asked. When the
submission names an agent that the corpus's config (or ``--config``) can build, and the
corpus holds the features of the predicted rows, the measures need no trust in the
submitter: each prediction becomes a claim (its label and cited ``evidence``; its stated
confidence and label scores are dropped, since a submitter chooses them), and ``ClaimProbe``
re-asks that agent on the full input (its own answer is the baseline), with only the cited
evidence, and without each cited modality in turn, on the corpus's own features and clips
(``agents/faithfulness/claims.py``: citing everything does not score 1 / 1). Only the rows
the caller passes are re-asked (``evaluate`` passes the answer rows: the hidden test split);
paid agents are probed only with ``include_paid``, and every call goes through the agent's
response cache and the configured budget.

A prediction without evidence, or for a row the corpus does not hold (or holds without
features), is counted and reported, never silently left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from emoforge.agents.faithfulness import FaithfulnessScore
from emoforge.agents.faithfulness.claims import ClaimProbe
from emoforge.storage.records import Annotation, Cue, Record, RunContext, SegmentRow, Status

STAGE = "evaluate-faithfulness"


class MeasuredFaithfulness(Record):
    """What the re-asks measured for one agent's submitted predictions."""

    agent: str = Field(description="The agent that was re-asked (a jury entry of the config).")
    n_predictions: int = Field(description="Predictions read.")
    n_scored: int = Field(description="Predictions with both measures.")
    n_no_evidence: int = Field(0, description="Predictions citing no evidence (scored 0 / 0, no call).")
    n_malformed: int = Field(0, description="Predictions whose evidence or confidence could not be read.")
    n_not_in_corpus: int = Field(0, description="Predictions whose row the corpus lacks, or holds without features.")
    n_skipped: int = Field(0, description="Not probed: a paid agent without include_paid.")
    n_failed: int = Field(0, description="A re-ask failed for a cause other than missing input (budget, provider).")
    sufficiency: float | None = Field(default=None, description="Mean sufficiency over the scored predictions.")
    necessity: float | None = Field(default=None, description="Mean necessity over the scored predictions.")
    cost_usd: float = Field(0.0, description="What the re-asks cost.")
    failures: dict[str, int] = Field(default_factory=dict, description="Failed re-asks by error kind.")


def prediction_annotation(
    row: SegmentRow, agent: str, backend: str, item: Mapping[str, Any], ctx: RunContext
) -> Annotation:
    """A submitted prediction as the claim ``ClaimProbe`` measures: its label and evidence.

    ``evidence`` is a list of cue objects (``modality`` and optionally ``feature``,
    ``start_s``, ``end_s``, ``cue``); a bare list of modality names (``evidence_modalities``)
    cites those modalities whole. Its confidence and label scores are not carried over: the
    agent's own answer on the full input is the baseline."""
    if row.segment is None:
        raise ValueError(f"row {row.row_id} has no segment")
    label = str(item["label"])
    cues: list[Cue] = []
    for raw in item.get("evidence") or []:
        cue = dict(raw) if isinstance(raw, Mapping) else {"modality": raw}
        cue.setdefault("cue", str(cue.get("feature") or cue["modality"]))
        cues.append(Cue.model_validate(cue))
    if not cues:
        cues = [Cue(modality=m, cue=str(m)) for m in item.get("evidence_modalities") or []]
    return Annotation(
        id=f"{row.segment.id}-{agent}",
        segment_id=row.segment.id,
        agent=agent,
        backend=backend,
        labels=list(item.get("labels") or [label]),
        primary_label=label,
        evidence=cues,
        provenance=ctx.provenance(STAGE, model=agent),
    )


class FaithfulnessEvaluator:
    """Re-asks one configured agent about its submitted predictions (module docstring).

    Args:
        config: the pipeline config whose jury holds ``agent`` (the corpus's, or ``--config``).
        agent: the jury entry's name.
        include_paid: also re-ask a paid (LLM) agent: 2 + (cited modalities) calls per prediction.
        cache_dir: the response cache (the corpus's ``.cache``), so repeated evaluations are free.
    """

    def __init__(self, config: Any, agent: str, include_paid: bool = False, cache_dir: Path | None = None) -> None:
        self.config, self.agent_name = config, agent
        self.include_paid, self.cache_dir = include_paid, cache_dir

    def run(
        self, rows: Iterable[SegmentRow], predictions: Mapping[str, Mapping[str, Any]]
    ) -> tuple[MeasuredFaithfulness, dict[str, FaithfulnessScore]]:
        from emoforge import __version__
        from emoforge.agents.clips import ClipCutter
        from emoforge.agents.jury import Jury
        from emoforge.configs import config_hash
        from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber

        config = self.config
        ctx = RunContext(run_id="evaluate", config_hash=config_hash(config), emoforge_version=__version__)
        jury = Jury(config.agents, ctx, self.cache_dir)
        try:
            annotator = next((a for a in jury.agents if a.name == self.agent_name), None)
            if annotator is None:
                names = ", ".join(a.name for a in jury.agents) or "none"
                raise ValueError(f"agent {self.agent_name!r} is not an enabled jury agent of the config ({names})")
            backend = next(a.backend for a in config.agents.jury if a.name == self.agent_name)
            wanted = {rid for rid, item in predictions.items() if item.get("label") is not None}
            by_recording: dict[str, list[SegmentRow]] = defaultdict(list)
            for row in rows:
                if row.row_id in wanted and row.segment and row.features and row.status == Status.ok:
                    by_recording[row.recording.uri].append(row)
            probe = ClaimProbe(include_paid=self.include_paid, ledger=jury.ledger)
            needs = jury.clip_needs
            cutter = ClipCutter(config.agents.clips, config.sampling.media) if needs.any else None
            scores: dict[str, FaithfulnessScore] = {}
            no_evidence = malformed = 0
            for uri, group in sorted(by_recording.items()):
                media = None
                if cutter is not None:
                    try:
                        recording = MediaProber(config.sampling.media).probe(uri)
                        media = MediaDecoder(config.sampling.media).decode(recording)
                    except (OSError, MediaError):
                        media = None  # the agent then gets no clip: a missing-input failure, scored as such
                for row in group:
                    try:
                        annotation = prediction_annotation(row, self.agent_name, backend, predictions[row.row_id], ctx)
                    except (ValidationError, KeyError, TypeError, ValueError):
                        malformed += 1
                        continue
                    no_evidence += not annotation.evidence
                    segment, features = row.segment, row.features
                    assert segment is not None and features is not None  # checked when grouping
                    clip = cutter.cut(media, segment, needs) if cutter is not None and media is not None else None
                    scores[row.row_id] = probe.score(annotator, segment, features, annotation, clip)
        finally:
            jury.close()
        scored = [s for s in scores.values() if s.sufficiency is not None and s.necessity is not None]
        failures: dict[str, int] = defaultdict(int)
        for s in scores.values():
            if s.status == Status.failed:
                failures[str(s.error_kind.value if s.error_kind else "unknown")] += 1
        summary = MeasuredFaithfulness(
            agent=self.agent_name,
            n_predictions=len(predictions),
            n_scored=len(scored),
            n_no_evidence=no_evidence,
            n_malformed=malformed,
            n_not_in_corpus=len(wanted) - sum(len(g) for g in by_recording.values()),
            n_skipped=sum(s.status == Status.skipped for s in scores.values()),
            n_failed=sum(failures.values()),
            sufficiency=sum(s.sufficiency or 0.0 for s in scored) / len(scored) if scored else None,
            necessity=sum(s.necessity or 0.0 for s in scored) / len(scored) if scored else None,
            cost_usd=round(sum(s.usage.cost_usd for s in scores.values()), 6),
            failures=dict(failures),
        )
        return summary, scores
