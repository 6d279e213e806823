"""Release config: human review (Label Studio), benchmark splits, and what goes into a release."""

from typing import Literal

from pydantic import Field, model_validator

from emoforge.configs.base import Section
from emoforge.configs.terms import MediaAction


class SplitSizes(Section):
    train: float = Field(0.8, ge=0, le=1, description="Target share of rows in the train split.")
    validation: float = Field(0.1, ge=0, le=1, description="Target share of rows in validation.")
    test: float = Field(0.1, ge=0, le=1, description="Target share of rows in test.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitSizes":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"release.splits must sum to 1, got {total:.6f}")
        return self

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class ReviewConfig(Section):
    """Label Studio export/import and the human-agreement thresholds."""

    audit_fraction: float = Field(
        0.0, ge=0, le=1, description="Share of unflagged ok rows added to the review queue as an audit sample."
    )
    audit_seed: int = Field(7, description="Seed of the audit sample (same seed, same sample).")
    media_url_prefix: str = Field(
        "",
        description="Prefix put before each media path in Label Studio tasks, e.g. "
        "'/data/local-files/?d=' when Label Studio serves local files.",
    )
    media_root: str = Field(
        "",
        description="Label Studio's LOCAL_FILES_DOCUMENT_ROOT: media under it are named by their path relative "
        "to it (what '/data/local-files/?d=' expects); empty: absolute paths.",
    )
    reading_overhead_s: float = Field(
        30.0,
        ge=0,
        description="Review time per clip besides playing it (reading the jury, choosing labels), in seconds: "
        "the review queue's minutes per clip = (plays_per_clip * clip duration + this) / 60. An assumption, "
        "not a measurement: set it from your reviewers' pace.",
    )
    plays_per_clip: float = Field(2.0, ge=0, description="How many times a reviewer plays a clip, on average.")
    kappa_pass: float = Field(0.8, description="Cohen's kappa above this counts as near-expert agreement.")
    icc_pass: float = Field(0.9, description="ICC above this counts as near-expert agreement.")


# SPDX ids of licences that allow anyone to redistribute the media (no NC, no ND clause).
OPEN_LICENCES = ["CC0-1.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "PDDL-1.0", "ODC-By-1.0"]


class ConsentActions(Section):
    """What a release does with a row's media, by the consent of the people in it."""

    publish: MediaAction = Field("link", description="Consent to publication.")
    research: MediaAction = Field("features", description="Consent to research use only: no pixels or waveforms.")
    none: MediaAction = Field("withhold", description="No consent, or consent withdrawn.")


class LicenceActions(Section):
    """What a release does with a row's media, by the class of its licence."""

    open: MediaAction = Field("link", description="A licence listed in release.policy.open_licences.")
    noncommercial: MediaAction = Field("link", description="A Creative Commons NC licence.")
    restricted: MediaAction = Field(
        "features", description="Any other licence text: research-only, all rights reserved, none."
    )


class ReleasePolicy(Section):
    """What may leave the building: a row gets the more restrictive of its consent's and its
    licence's action (copy > link > features > withhold); terms unknown are refused unless
    ``export --allow-unknown``, and then get ``unknown``."""

    consent: ConsentActions = ConsentActions()
    licence: LicenceActions = LicenceActions()
    unknown: MediaAction = Field(
        "features",
        description="Action for an unknown consent or licence once --allow-unknown is given (without it such rows "
        "are withheld).",
    )
    open_licences: list[str] = Field(
        default=OPEN_LICENCES,
        description="SPDX ids (case-insensitive) that allow redistribution of the media.",
    )
    speakers: Literal["hash", "keep"] = Field(
        "hash",
        description="hash: speaker names and ids become salted hashes (salt per corpus, in CORPUS/speaker-salt) in "
        "every published file; keep: published as given.",
    )


class ReleaseConfig(Section):
    seed: int = Field(13, description="Seed of the split assignment (same seed, same split).")
    splits: SplitSizes = SplitSizes()
    group_by: list[Literal["source", "speaker"]] = Field(
        default=["source", "speaker"],
        description="Keys that never cross splits (segments of one recording never do either).",
    )
    hide_test_labels: bool = Field(True, description="Move test labels to answers/test.jsonl.")
    hidden_ids: Literal["auto", "opaque", "keep"] = Field(
        "auto",
        description="Names of hidden test rows: opaque ids (keyed hashes; media as test/<id><suffix>, no source); "
        "auto: opaque when a row's media path, source, speaker or id names a label; keep: as in the corpus.",
    )
    only_ok: bool = Field(True, description="Only rows with status ok and passing QC.")
    include_review_flagged: bool = Field(
        False, description="Also release rows still flagged for review and not yet verified by a human."
    )
    licence: str = Field("TODO: fill in", description="Licence written into the dataset card.")
    review: ReviewConfig = ReviewConfig()
    policy: ReleasePolicy = ReleasePolicy()
