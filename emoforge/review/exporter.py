"""Label Studio export: review-queue tasks and the labelling config they fit.

One task per queued segment, never one a human already verified: its own clip
(``emoforge/review/media.py``), time span, transcript, jury summary, and every annotator's
answer as a separate prediction (``emoforge/review/tasks.py``). Tasks come as one Label Studio
project per player (video, audio). The way back in is ``emoforge/review/parser.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.quality.review_priority import review_order, within_budget
from emoforge.review.media import MediaKind, ReviewMediaCutter, TaskMedia, is_served, whole_recording
from emoforge.review.tasks import labeling_config, task_json
from emoforge.storage.records import Record, SegmentRow, Status
from emoforge.storage.safe_files import write_text


class LabelStudioProject(Record):
    """Tasks of one media kind and the labelling config they fit: one Label Studio project."""

    kind: MediaKind = Field(description="Player of every task: video or audio.")
    tasks: list[dict[str, Any]] = Field(description="Label Studio task JSON (data + predictions).")
    labeling_config: str = Field(description="Labelling config XML.")


class LabelStudioExport(Record):
    """Tasks plus the labelling config they fit (one project per media kind present)."""

    tasks: list[dict[str, Any]] = Field(description="Label Studio task JSON (data + predictions), all kinds.")
    labeling_config: str = Field(description="Labelling config XML of the first project.")
    projects: list[LabelStudioProject] = Field(default_factory=list, description="One per media kind, video first.")
    verified: int = Field(default=0, description="Rows left out because a human already verified them.")
    warnings: list[str] = Field(default_factory=list, description="Media a reviewer will not see or hear, and why.")
    queued: int = Field(description="Rows queued for review: the flagged ones, or a budget's pick.")
    audit: int = Field(description="Rows added as the random audit sample.")
    minutes: float = Field(default=0.0, description="Estimated review minutes of the queued rows.")

    def write(self, out: Path) -> list[tuple[LabelStudioProject, Path]]:
        """Each project's tasks (JSON) and labelling config (``.xml`` beside it): at ``out`` when
        there is one project, else at ``<stem>-video.json`` and ``<stem>-audio.json``."""
        out.parent.mkdir(parents=True, exist_ok=True)
        projects = self.projects or [LabelStudioProject(kind="video", tasks=[], labeling_config=self.labeling_config)]
        written = []
        for project in projects:
            path = out if len(projects) == 1 else out.with_name(f"{out.stem}-{project.kind}{out.suffix}")
            write_text(path, json.dumps(project.tasks, indent=1, ensure_ascii=False))
            write_text(path.with_suffix(".xml"), project.labeling_config)
            written.append((project, path))
        return written


def review_queue(
    rows: list[SegmentRow], config: ReviewConfig, budget_minutes: float | None = None
) -> tuple[list[SegmentRow], float]:
    """The rows to review, most expected label changes per minute first
    (``emoforge/quality/review_priority.py``), and their estimated minutes.

    Without a budget: the rows flagged ``needs_review``, in that order. With one: the best
    ``budget_minutes`` of clips among all ``rows``, flagged or not.
    """
    if budget_minutes is None:
        items = review_order((r for r in rows if r.consensus and r.consensus.needs_review), config)
    else:
        items = within_budget(review_order(rows, config), budget_minutes)
    return [x.row for x in items], sum(x.minutes for x in items)


class LabelStudioExporter:
    """Turns the review queue (plus an audit sample) into Label Studio tasks."""

    def __init__(self, config: ReviewConfig) -> None:
        self.config = config

    def export(
        self,
        rows: list[SegmentRow],
        labels: list[str],
        budget_minutes: float | None = None,
        *,
        media_dir: Path | None = None,
    ) -> LabelStudioExport:
        """Tasks for the queue and audit sample; ``media_dir``: where to cut each segment's clip
        and key frames (``emoforge/review/media.py``); without it tasks name the whole recording."""
        ok = sorted((r for r in rows if r.status == Status.ok and r.segment), key=lambda r: r.row_id)
        # A row a human already verified is not sent out again, neither queued nor audited.
        verified = sum(bool(r.human) for r in ok)
        ok = [r for r in ok if not r.human]
        queued, minutes = review_queue(ok, self.config, budget_minutes)
        rest = [r for r in ok if not (r.consensus and r.consensus.needs_review)]
        # A budget is the whole session: it is spent on the best clips, none on a random audit.
        n_audit = round(len(rest) * self.config.audit_fraction) if budget_minutes is None else 0
        audit = random.Random(self.config.audit_seed).sample(rest, n_audit) if n_audit else []
        picked = [(r, "review") for r in queued] + [(r, "audit") for r in sorted(audit, key=lambda r: r.row_id)]
        media = self._media([r for r, _ in picked], media_dir)
        projects = []
        for kind in ("video", "audio"):
            tasks = [task_json(r, labels, why, media[r.row_id]) for r, why in picked if media[r.row_id].kind == kind]
            if tasks:
                projects.append(
                    LabelStudioProject(kind=kind, tasks=tasks, labeling_config=labeling_config(labels, kind))
                )
        return LabelStudioExport(
            tasks=[t for p in projects for t in p.tasks],
            labeling_config=projects[0].labeling_config if projects else labeling_config(labels),
            projects=projects,
            verified=verified,
            warnings=_media_warnings(media),
            queued=len(queued),
            audit=len(audit),
            minutes=round(minutes, 2),
        )

    def _media(self, rows: list[SegmentRow], media_dir: Path | None) -> dict[str, TaskMedia]:
        if media_dir is None:
            return {r.row_id: whole_recording(r, self.config) for r in rows}
        return ReviewMediaCutter(media_dir, self.config).task_media(rows)


def _media_warnings(media: dict[str, TaskMedia]) -> list[str]:
    """What keeps a reviewer from seeing or hearing a clip, one line per cause."""
    out = [f"{row_id}: {note}" for row_id, m in sorted(media.items()) for note in m.notes]
    local = sorted(row_id for row_id, m in media.items() if not is_served(m.url))
    if local:
        out.append(
            f"{len(local)} task(s) name media by local path (e.g. {media[local[0]].url}) and nothing serves them: "
            "Label Studio's player cannot load a file path. Serve the folder with Label Studio's local-files "
            "storage and set release.review.media_url_prefix and media_root (docs/release.md)"
        )
    return out
