#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian machine for emoforge: system packages, a .venv
# holding exactly requirements/lock.txt, and a Label Studio venv holding exactly
# requirements/labelstudio.lock.txt.
#
# Every Python package comes from a lock (name==version, sha256 hashes), installed with
# --no-deps: pip resolves nothing here, so a new release on PyPI cannot change what a fresh
# clone gets. requirements/stack.txt is the human-edited input; scripts/lock.sh turns it into
# the locks (see "Upgrading a dependency" in the README).
#
# An existing venv is checked against its lock on every run (scripts/check_lock.py). If it
# drifted (a package added, removed or at another version by hand), it is repaired in place
# from the lock; if the repair does not match either, the venv is rebuilt. Either is said.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${EMOFORGE_VENV:-$ROOT/.venv}
LS_VENV=${EMOFORGE_LABELSTUDIO_VENV:-$ROOT/.venv-labelstudio}
LOCK=$ROOT/requirements/lock.txt
LS_LOCK=$ROOT/requirements/labelstudio.lock.txt
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[setup] %s\n' "$*" >&2; }
# pip prints a warning per package for find-links folders this machine lacks; keep real errors.
quiet() { "$@" 2> >(grep -v -e "^WARNING: Location 'file:" -e "^DEPRECATION" >&2); }

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need_apt=""
for bin in ffmpeg espeak-ng sox chromium; do command -v "$bin" >/dev/null || need_apt=1; done
if [ -n "$need_apt" ]; then
  log "installing ffmpeg, espeak-ng, sox, chromium (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg espeak-ng sox chromium >/dev/null
fi

# Transcripts in Chinese, Japanese or Korean (the multilingual ASR writes them) render as boxes in
# the HTML report and in Label Studio without a CJK font; the report's CSS names Noto Sans CJK.
if ! { command -v fc-list >/dev/null && fc-list :lang=zh family | grep -q .; }; then
  log "installing a CJK font (fonts-noto-cjk, apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-noto-cjk >/dev/null
fi

lock_id() { sha256sum "$1" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16; }

# sync VENV LOCK NAME [IGNORED...]: make VENV hold exactly LOCK.
sync_venv() {
  local venv=$1 lock=$2 name=$3
  shift 3
  local ignore=()
  for pkg in "$@"; do ignore+=(--ignore "$pkg"); done
  local drift
  drift=$(mktemp)
  if [ -x "$venv/bin/python" ]; then
    if "$venv/bin/python" "$ROOT/scripts/check_lock.py" "$lock" "${ignore[@]}" --quiet 2>"$drift"; then
      return 0
    fi
    log "$name venv $venv differs from $(basename "$lock"); repairing it from the lock:"
    sed 's/^/[setup]   /' "$drift" >&2
    install_lock "$venv" "$lock" "$@"
    if "$venv/bin/python" "$ROOT/scripts/check_lock.py" "$lock" "${ignore[@]}" --quiet; then
      log "$name venv repaired"
      return 0
    fi
    log "$name venv still differs after the repair; rebuilding it"
    rm -rf "$venv"
  fi
  log "creating the $name venv $venv from $(basename "$lock") (first time: several minutes)"
  "$PY" -m venv "$venv"
  install_lock "$venv" "$lock" "$@"
  "$venv/bin/python" "$ROOT/scripts/check_lock.py" "$lock" "${ignore[@]}" --quiet
}

# install_lock VENV LOCK [KEEP...]: the locked versions, nothing resolved, then anything the lock
# does not name removed (KEEP: packages installed apart from the lock, e.g. the project itself).
install_lock() {
  local venv=$1 lock=$2
  shift 2
  quiet "$venv/bin/python" -m pip install -q --no-deps --require-hashes -r "$lock"
  local extras
  extras=$("$venv/bin/python" "$ROOT/scripts/check_lock.py" "$lock" --print-extras "${@/#/--ignore=}" || true)
  if [ -n "$extras" ]; then
    log "removing packages the lock does not name: $(echo "$extras" | tr '\n' ' ')"
    # Two distributions can share one import folder (OpenCV builds all write cv2/): the locked
    # ones that share a folder with a removed one are reinstalled, as the removal takes their files.
    local shared
    shared=$(mktemp)
    # shellcheck disable=SC2086
    "$venv/bin/python" "$ROOT/scripts/check_lock.py" "$lock" --overlapping $extras > "$shared"
    # shellcheck disable=SC2086
    quiet "$venv/bin/python" -m pip uninstall -q -y $extras
    if [ -s "$shared" ]; then
      quiet "$venv/bin/python" -m pip install -q --no-deps --require-hashes --force-reinstall -r "$shared"
    fi
  fi
}

# Label Studio (human review round trip) lives in its own venv: its Django/pydantic pins clash
# with ours. Its migrations take minutes on two cores, so an empty migrated database is kept
# as a template that tests copy instead of migrating on every server start. It installs in the
# background while the project venv does: both mostly wait on downloads and disk.
(
  command -v flock >/dev/null && flock 9
  sync_venv "$LS_VENV" "$LS_LOCK" "Label Studio"
  # The template belongs to the locked Label Studio: a new lock migrates a new one.
  if [ "$(cat "$LS_VENV/template/.emoforge-lock" 2>/dev/null)" != "$(lock_id "$LS_LOCK")" ]; then
    log "migrating a template Label Studio database"
    rm -rf "$LS_VENV/template" && mkdir -p "$LS_VENV/template"
    LATEST_VERSION_CHECK=false "$LS_VENV/bin/label-studio" version --data-dir "$LS_VENV/template" >/dev/null 2>&1
    rm -f "$LS_VENV/template/.env" # holds a generated SECRET_KEY; each server makes its own
    lock_id "$LS_LOCK" > "$LS_VENV/template/.emoforge-lock"
  fi
) 9>/tmp/emoforge-labelstudio.lock &
ls_pid=$!

sync_venv "$VENV" "$LOCK" "project" emoforge
wait "$ls_pid" || { log "the Label Studio venv failed to set up"; exit 1; }

# The project itself, editable and without dependencies: every dependency comes from the lock.
# Re-linked on every run because CI clones to a fresh path.
# setuptools warns on every editable build that the mapped top-level folders (agents/ ->
# emoforge.agents) could shadow imports; the mapping is deliberate (README, Layout).
PYTHONWARNINGS=ignore quiet "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >/dev/null

if [ ! -f "$VENV/.emoforge-imports" ] || [ "$(cat "$VENV/.emoforge-imports")" != "$(lock_id "$LOCK")" ]; then
  log "checking that the locked stacks import together"
  PYTHONWARNINGS=ignore "$VENV/bin/python" - <<'PY'
import os
os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch, torchaudio, torchvision, torchcodec  # noqa: E401,F401
import whisperx, pyannote.audio, feat, mediapipe, prefect, scenedetect, xllamacpp  # noqa: E401,F401
import cv2
assert torch.__version__.startswith("2.8."), torch.__version__
assert hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "xfeatures2d"), cv2.__file__  # one full contrib build
PY
  lock_id "$LOCK" > "$VENV/.emoforge-imports"
fi
log "environment matches the lock: $VENV"
