"""Reproducible installs: constraints.txt pins every dependency (torch aside) to the version the
tests run with, and both ./run.sh (so CI) and the Dockerfile install through it."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys

from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "constraints.txt"
LOCK = REPO_ROOT / "deploy" / "lock_constraints.py"


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[a-z0-9-]+", name), line  # exact, canonical
            out[name] = version
    return out


def test_every_requirement_is_pinned_and_satisfied_except_torch():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    assert "torch" not in pinned  # run.sh and the Dockerfile pin the CPU or CUDA build
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(line)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name == "torch":
            continue
        assert name in pinned, f"{req.name} is not in constraints.txt: run ./run.sh lock"
        assert req.specifier.contains(pinned[name], prereleases=True), (line, pinned[name])


def test_the_environment_the_tests_run_in_is_the_pinned_one():
    """Every pinned package is installed at its pinned version (./run.sh setup used it)."""
    wrong = {}
    for name, version in pins().items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            wrong[name] = (version, None)
            continue
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong}; run ./run.sh lock or ./run.sh setup"


def test_the_lock_script_reproduces_the_file():
    written = subprocess.run(
        [sys.executable, str(LOCK)], capture_output=True, text=True, check=True
    ).stdout
    assert written == CONSTRAINTS.read_text(), "constraints.txt is stale: run ./run.sh lock"


def test_run_sh_installs_through_the_constraints():
    run_sh = (REPO_ROOT / "run.sh").read_text()
    assert '-m pip install -q -c constraints.txt -e ".[dev]"' in run_sh
    assert "cat pyproject.toml constraints.txt | sha256sum" in run_sh  # a new lock reinstalls


def test_the_extras_of_a_requirement_are_pinned_too():
    """Issue 33, finding 13: uvicorn[standard]'s own packages were left out of the lock (its
    ``extra == 'standard'`` markers were judged with no extra)."""
    assert {"httptools", "uvloop", "watchfiles", "websockets"} <= set(pins())


def test_torch_has_an_upper_bound_that_the_pinned_cpu_build_meets():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    (torch,) = [Requirement(r) for r in project["dependencies"] if r.startswith("torch")]
    assert any(spec.operator == "<" for spec in torch.specifier), torch
    pinned = re.search(r"TORCH_SPEC:-torch==([\d.]+)", (REPO_ROOT / "run.sh").read_text())
    assert pinned and torch.specifier.contains(pinned.group(1)), (torch, pinned)
