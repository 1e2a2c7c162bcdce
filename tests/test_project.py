"""Repository hygiene: clean notebooks, a conda environment that matches pyproject, ruff config."""

import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml  # PyYAML comes with jupyterlab (jupyter-events)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    """'tensorflow[and-cuda]>=2.16' -> 'tensorflow' (normalised as pip does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def test_there_are_notebooks():
    assert any(path.name.startswith("00_") for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {index} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {index} was executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_have_unique_ids(path):
    # nbformat 4.5 requires cell ids (a missing one is a warning today, an error in later nbformat)
    notebook = json.loads(path.read_text())
    ids = [cell.get("id") for cell in notebook["cells"]]
    assert None not in ids, f"{path.name} cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name} has duplicate cell ids"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_kernelspec_is_python3(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "notebooks are NN_name.ipynb"


def environment_pip_lines() -> tuple[list[str], list[str]]:
    """(conda dependencies that are strings, pip requirements) of environment.yml."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pip += entry.get("pip", [])
        else:
            conda.append(entry)
    return conda, pip


def test_environment_yml_installs_what_pyproject_declares():
    project = pyproject()["project"]
    conda, pip = environment_pip_lines()
    conda_names = [requirement_name(re.split(r"[=<>]", c)[0]) for c in conda]
    assert "python" in conda_names and "pip" in conda_names
    python = next(c for c in conda if c.startswith("python"))
    minimum = re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups()
    assert tuple(map(int, python.split("=")[-1].split(".")[:2])) >= tuple(map(int, minimum))

    # Either the package itself is installed through pip with its extras (then pip resolves
    # exactly pyproject's list) or every dependency is listed by name.
    editable = [line for line in pip if re.fullmatch(r"-e \.(\[[a-z,\- ]+\])?", line.strip())]
    extras = set()
    for line in editable:
        found = re.search(r"\[(.*)\]", line)
        extras |= {e.strip() for e in found.group(1).split(",")} if found else set()
    listed = {requirement_name(line) for line in pip if not line.startswith("-")}
    listed |= set(conda_names)
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    for requirement in declared:
        assert editable or requirement_name(requirement) in listed, requirement
    assert "dev" in extras or not editable, "install the dev extra: -e .[dev]"
    assert extras <= set(project["optional-dependencies"]), "environment.yml names a missing extra"


def locked_versions() -> dict[str, str]:
    """constraints.txt as {normalised name: exact version}."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pins), "constraints.txt holds exact pins only (name==1.2)"
    return {requirement_name(name): version.strip() for name, version in pins}


def test_the_lock_pins_every_dependency_within_its_range():
    from packaging.requirements import Requirement

    locked = locked_versions()
    project = pyproject()["project"]
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(text)
        name = requirement_name(requirement.name)
        assert name in locked, f"{name} is not pinned in constraints.txt: run make lock"
        assert requirement.specifier.contains(locked[name]), (
            f"constraints.txt pins {name}=={locked[name]}, outside pyproject's {requirement}"
        )
    _, pip = environment_pip_lines()
    assert "-c constraints.txt" in pip, "environment.yml must install from the lock too"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile and "LOCK   := constraints.txt" in makefile


def test_ruff_is_configured():
    ruff = pyproject()["tool"]["ruff"]
    assert ruff["line-length"] == 100
    assert {"E", "F", "W", "I", "B", "UP"} <= set(ruff["lint"]["select"])
    assert "ruff" in {
        requirement_name(r) for r in pyproject()["project"]["optional-dependencies"]["dev"]
    }


GLOBAL_SEEDING = re.compile(
    r"np\.random\.seed\(|set_random_seed\(|tf\.random\.set_seed\(|random\.seed\("
)


def test_nothing_seeds_the_global_random_generators():
    """Seeds are explicit arguments (docs/DESIGN.md): no notebook and no package module reseeds
    NumPy, Python or TensorFlow globally, so running one cell or one call never changes another's
    random numbers."""
    sources = [*NOTEBOOKS, *sorted((ROOT / "didlearn").rglob("*.py"))]
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sources
        for match in GLOBAL_SEEDING.finditer(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)


QUIET_SCRIPT = """
import didlearn
import tensorflow as tf
print(float(tf.function(lambda a: a * 2, jit_compile=True)(tf.constant([[1.0]]))[0, 0]))
"""


def test_importing_didlearn_holds_back_tensorflows_start_up_logs():
    import os
    import subprocess
    import sys

    from didlearn.quiet import tensorflow_log_lines  # what notebooks/conftest.py fails on

    def stderr_lines(**env) -> list[str]:
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("TF_", "DIDLEARN_TF"))
        }
        run = subprocess.run(
            [sys.executable, "-c", QUIET_SCRIPT],
            capture_output=True,
            text=True,
            env={**environment, **env},
            timeout=300,
        )
        assert run.returncode == 0 and run.stdout.strip() == "2.0", run.stderr
        return tensorflow_log_lines(run.stderr)

    assert stderr_lines() == []
    if not stderr_lines(DIDLEARN_TF_LOGS="1"):
        pytest.skip("TensorFlow prints no start-up lines on this machine: nothing to hold back")


def test_graph_optimizer_give_ups_are_dropped_and_other_lines_kept(capfd, monkeypatch):
    import os

    from didlearn import quiet

    monkeypatch.delenv(quiet.KEEP_LOGS, raising=False)
    gave_up = (
        "E0000 00:00:1.2 99 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation\n"
    )
    other = "W0000 00:00:1.3 99 some_kernel.cc:12] something else\n"
    with quiet.optimizer_notes_held_back():
        os.write(2, (gave_up + other).encode())
    err = capfd.readouterr().err
    assert "remapper failed" not in err and "something else" in err
