"""Write constraints.txt: the exact version of every package the project needs (its
dependencies and the ``dev`` extra, and theirs, recursively), as installed in the environment
that passed the tests.

    ./run.sh lock        (= .venv/bin/python deploy/lock_constraints.py > constraints.txt)

torch is left out: ./run.sh and the Dockerfile pin it themselves (CPU or CUDA build). The file
is used as ``pip install -c constraints.txt`` by ./run.sh (so by CI) and by the Dockerfile, so
every build installs the versions that were tested. Run it after changing a dependency, in a
fresh ``./run.sh setup``, and commit the result with the change.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("dev",)
PINNED_ELSEWHERE = {"torch"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def closure(requirements: list[Requirement]) -> dict[str, str]:
    """Installed name -> version of ``requirements`` and everything they need (markers
    evaluated for this interpreter and the requested extras)."""
    installed = {canonical(d.metadata["Name"]): d for d in md.distributions()}
    pins: dict[str, str] = {}
    # a marker is judged once, where the requirement is found: a sub-requirement's marker
    # (``extra == "standard"``) holds for its parent's extras, not for an empty extra
    stack = [
        (req, frozenset(req.extras))
        for req in requirements
        if not (req.marker and not req.marker.evaluate({"extra": ""}))
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while stack:
        req, extras = stack.pop()
        name = canonical(req.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = installed.get(name)
        if dist is None:
            raise SystemExit(f"{req.name} is required but not installed: run ./run.sh setup")
        pins[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker and not any(sub.marker.evaluate({"extra": e}) for e in extras | {""}):
                continue
            stack.append((sub, frozenset(sub.extras)))
    return pins


def main() -> None:
    pins = closure(project_requirements())
    sys.stdout.write(
        "# Exact versions of the project's dependencies and the dev extra, as tested.\n"
        "# Written by deploy/lock_constraints.py (./run.sh lock); used as pip -c by run.sh and\n"
        "# the Dockerfile. torch is pinned by those two themselves (CPU or CUDA build).\n"
    )
    for name in sorted(pins):
        if name not in PINNED_ELSEWHERE:
            sys.stdout.write(f"{name}=={pins[name]}\n")


if __name__ == "__main__":
    main()
