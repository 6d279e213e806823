"""Compare the packages installed in this interpreter's environment with a lock file.

    python scripts/check_lock.py requirements/lock.txt [--ignore NAME ...] [--quiet]
    python scripts/check_lock.py requirements/lock.txt --print-pins [--ignore NAME ...]

A lock line is ``name==version`` (``--hash`` options and comments are ignored). Exit 0 when
the environment holds exactly the locked versions (plus the ignored names: the project
itself, installed editable, and packages built here rather than taken from the index);
exit 1 with a list of what differs otherwise: missing packages, other versions, and
packages the lock does not name. ``--print-pins`` prints the lock's ``name==version`` lines
instead (a pip constraints file: ``scripts/lock.sh --keep``). Runs on the standard library only, so it works in a
half-built environment too.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

# The venv's own tooling: checked when the lock pins it, never reported as an extra.
VENV_TOOLS = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("-"):
            continue
        spec = line.split(";", 1)[0].split()[0]
        if "==" not in spec:
            raise SystemExit(f"{path}: not an exact pin: {raw!r}")
        name, version = spec.split("==", 1)
        pins[canonical(name.split("[", 1)[0])] = version
    return pins


def installed() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[canonical(name)] = dist.version
    return out


def differences(lock: dict[str, str], have: dict[str, str], ignored: set[str]) -> list[str]:
    problems = []
    for name, version in sorted(lock.items()):
        if name in ignored:
            continue
        if name not in have:
            problems.append(f"missing    {name}=={version}")
        elif have[name] != version:
            problems.append(f"version    {name}: installed {have[name]}, locked {version}")
    for name in sorted(set(have) - set(lock) - ignored - VENV_TOOLS):
        problems.append(f"not locked {name}=={have[name]}")
    return problems


def top_level(name: str) -> set[str]:
    """The import folders (first path parts) a distribution's files live in."""
    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return set()
    return {f.parts[0] for f in files if len(f.parts) > 1 and not f.parts[0].endswith((".dist-info", ".data"))}


def lock_entries(path: Path) -> dict[str, str]:
    """Canonical name -> the lock's text for it (the pin line and its --hash lines)."""
    entries: dict[str, str] = {}
    current: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash") and current is not None:
            entries[current] += "\n" + raw
            continue
        current = canonical(line.split("==", 1)[0].split("[", 1)[0])
        entries[current] = raw
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--ignore", action="append", default=[], help="package name to leave out")
    parser.add_argument("--quiet", action="store_true", help="print nothing when the environment matches")
    parser.add_argument(
        "--print-extras", action="store_true", help="print only the installed packages the lock does not name"
    )
    parser.add_argument(
        "--print-pins", action="store_true", help="print the lock's name==version lines, without hashes"
    )
    parser.add_argument(
        "--overlapping",
        nargs="+",
        metavar="DIST",
        help="print the lock entries of installed packages that share an import folder with DIST "
        "(to reinstall after removing DIST, which deletes the shared files: OpenCV builds all write cv2/)",
    )
    args = parser.parse_args(argv)
    ignored = {canonical(n) for n in args.ignore}
    if args.overlapping:
        shared = set().union(*(top_level(n) for n in args.overlapping))
        entries = lock_entries(args.lock)
        for name in sorted(set(installed()) & set(entries)):
            if name not in {canonical(n) for n in args.overlapping} and top_level(name) & shared:
                print(entries[name])
        return 0
    if args.print_pins:
        for name, version in sorted(read_lock(args.lock).items()):
            if name not in ignored:
                print(f"{name}=={version}")
        return 0
    if args.print_extras:
        for name in sorted(set(installed()) - set(read_lock(args.lock)) - ignored - VENV_TOOLS):
            print(name)
        return 0
    problems = differences(read_lock(args.lock), installed(), ignored)
    if problems:
        print(f"environment {sys.prefix} differs from {args.lock} in {len(problems)} package(s):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"environment {sys.prefix} matches {args.lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
