"""Action units from py-feat's ``Detectorv2`` (RetinaFace + face_multitask_v2), local weights only.

py-feat fetches its weights from the Hugging Face hub into its resource folder on first use.
Nothing may be downloaded here, so the backend runs only when ``aus.pyfeat_model_dir``
points to a folder holding those files in hub-cache layout (the ``feat/resources`` folder
of a machine where py-feat ran once, copied over). The hub is forced offline and py-feat's
resource lookups are pointed at that folder; a missing file is then a
``model_unavailable`` failure, not a download.

``OMP_NUM_THREADS`` is set before ``import feat`` (py-feat pins it to 1 when unset).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emoforge.configs.preprocess import AUConfig
from emoforge.preprocess.models import ModelUnavailable

log = logging.getLogger(__name__)


def _au_name(column: str) -> str:
    """'AU01' -> 'AU1', the naming the landmark estimator uses."""
    return "AU" + str(int(column[2:])) if column[2:].isdigit() else column


class PyFeatAUEstimator:
    """AU intensities 0..1 per frame from py-feat; weights loaded once, from a local folder."""

    backend = "pyfeat"
    model_id = "py-feat-Detectorv2(face_multitask_v2)"

    def __init__(self, config: AUConfig) -> None:
        self.config = config
        self._detector: Any = None

    def _load(self) -> Any:
        if self._detector is not None:
            return self._detector
        if not self.config.pyfeat_model_dir:
            raise ModelUnavailable("aus.pyfeat_model_dir is not set; py-feat would download weights")
        root = Path(self.config.pyfeat_model_dir).expanduser()
        if not root.is_dir():
            raise ModelUnavailable(f"py-feat weights folder {root} does not exist")
        os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            import feat
            from feat.detector_v2 import Detectorv2
        except ImportError as exc:
            raise ModelUnavailable(f"py-feat not importable: {exc}") from exc
        # py-feat modules bind get_resource_path at import; point each binding at the local folder.
        for name, module in list(sys.modules.items()):
            if name.startswith("feat") and hasattr(module, "get_resource_path"):
                module.get_resource_path = lambda: str(root)  # type: ignore[attr-defined]
        log.info("py-feat %s from %s", getattr(feat, "__version__", "?"), root)
        try:
            self._detector = Detectorv2(device="cpu", identity_model=None)
        except (OSError, ValueError, RuntimeError) as exc:  # hub cache miss surfaces as OSError subclasses
            raise ModelUnavailable(f"py-feat weights incomplete in {root}: {exc}") from exc
        return self._detector

    def estimate_images(self, images: Sequence[np.ndarray]) -> list[dict[str, float] | None]:
        """AUs for each BGR frame (None where py-feat found no face).

        Raises:
            ModelUnavailable: no local weights.
        """
        import torch

        detector = self._load()
        if not images:
            return []
        batch = torch.from_numpy(np.stack([img[:, :, ::-1].transpose(2, 0, 1).copy() for img in images]))
        fex = detector.detect(batch, data_type="tensor", batch_size=len(images), progress_bar=False)
        au_cols = [c for c in fex.columns if str(c).startswith("AU")]
        out: list[dict[str, float] | None] = [None] * len(images)
        for frame, rows in fex.groupby("frame"):
            widths = rows["FaceRectWidth"].to_numpy() if "FaceRectWidth" in rows else np.zeros(len(rows))
            best = rows.iloc[int(np.argmax(widths))]  # the largest face is the main one
            out[int(frame)] = {_au_name(c): round(float(best[c]), 4) for c in au_cols if np.isfinite(best[c])}
        return out
