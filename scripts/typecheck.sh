#!/usr/bin/env bash
# mypy over the package as it is installed: setuptools maps the top-level folders to
# emoforge.* (agents/ -> emoforge.agents, ...), which mypy cannot follow from the repo root,
# so it checks a temporary tree of symlinks with that layout. Without it, every
# emoforge.* import would resolve to Any and cross-module types would go unchecked.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/emoforge"
for entry in "$repo"/emoforge/*; do
  [ "$(basename "$entry")" = "__pycache__" ] || ln -s "$entry" "$tree/emoforge/"
done
for pkg in agents configs flows preprocess storage; do
  ln -s "$repo/$pkg" "$tree/emoforge/$pkg"
done
cd "$tree"
"$repo/.venv/bin/mypy" --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache" -p emoforge
