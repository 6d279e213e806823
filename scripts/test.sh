#!/usr/bin/env bash
# Set up (idempotent) and run lint, the type check and the whole test suite. Exit non-zero on any failure,
# including "no tests collected" (pytest exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# setup.sh repairs drift; this states it: the suite runs only on the locked versions.
if ! .venv/bin/python scripts/check_lock.py requirements/lock.txt --ignore emoforge --quiet; then
  echo "the .venv is not the locked environment (above); run 'bash scripts/setup.sh' to repair it," >&2
  echo "or 'bash scripts/lock.sh' if you meant to change a dependency (README: Upgrading a dependency)" >&2
  exit 1
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
export EMOFORGE_FIXTURES=${EMOFORGE_FIXTURES:-../shared/fixtures}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=1200 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
