"""Agreement statistics of a written corpus, stored under ``stats`` in its manifest.

The workflows behind ``emoforge agreement`` and the statistics ``emoforge review import``
recomputes once human labels arrive; both refresh the review queue's priority deciles. The
caller holds the corpus lock.
"""

from __future__ import annotations

from emoforge.configs.release import ReviewConfig
from emoforge.quality.agreement import AgreementReport
from emoforge.quality.human_agreement import HumanAgreementReport
from emoforge.quality.review_priority import ReviewPriorityReport
from emoforge.storage.records import SegmentRow


def store_agreement(corpus: str, review: ReviewConfig) -> tuple[AgreementReport, ReviewPriorityReport]:
    """Inter-annotator agreement (``corpus_agreement``, humans included) and the priority deciles."""
    from emoforge.quality.agreement import corpus_agreement
    from emoforge.storage.shards import read_rows, update_manifest_stats

    rows = list(read_rows(corpus))
    report = corpus_agreement(rows, human_review=review)
    update_manifest_stats(corpus, "agreement", report.model_dump(mode="json"))
    return report, _store_priority(corpus, rows, review)


def store_human_agreement(corpus: str, review: ReviewConfig) -> tuple[HumanAgreementReport, ReviewPriorityReport]:
    """Machine vs human labels (``human_agreement``) and the priority deciles."""
    from emoforge.quality.human_agreement import human_agreement
    from emoforge.storage.shards import read_rows, update_manifest_stats

    rows = list(read_rows(corpus))
    agreement = human_agreement(rows, review)
    update_manifest_stats(corpus, "human_agreement", agreement.model_dump(mode="json"))
    return agreement, _store_priority(corpus, rows, review)


def _store_priority(corpus: str, rows: list[SegmentRow], review: ReviewConfig) -> ReviewPriorityReport:
    from emoforge.quality.review_priority import priority_deciles
    from emoforge.storage.shards import update_manifest_stats

    deciles = priority_deciles(rows, review)
    update_manifest_stats(corpus, "review_priority", deciles.model_dump(mode="json"))
    return deciles
