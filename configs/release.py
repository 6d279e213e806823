"""Release config: benchmark splits and what goes into a release."""

from pydantic import Field, model_validator

from emoforge.configs.base import Section


class SplitSizes(Section):
    train: float = Field(0.8, ge=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitSizes":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"release.splits must sum to 1, got {total:.6f}")
        return self


class ReleaseConfig(Section):
    seed: int = 13
    splits: SplitSizes = SplitSizes()
    hide_test_labels: bool = True
    only_ok: bool = Field(True, description="Only rows with status ok and passing QC.")
    include_review_flagged: bool = False
