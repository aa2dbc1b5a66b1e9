"""Imports run one way: every module imports alone in a fresh interpreter, in any order, none
hides an import inside a function, and a non-editable install finds its package data."""

import ast
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("roadmap", "steps")
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in PACKAGES
    for path in (ROOT / package).glob("*.py")
    if path.name != "__main__.py"
)


# Imports each module first, with none of this project's modules loaded: the third-party libraries
# (which never import ours) are loaded once, so that each check costs a fraction of a second.
ONE_BY_ONE = """
import importlib, json, sys
import fvcore.nn, matplotlib.pyplot, pandas, submitit, timm, torch, torchvision
failures = {}
for module in sys.argv[1:]:
    for name in [name for name in sys.modules if name.split(".")[0] in ("roadmap", "steps")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception as error:
        failures[module] = f"{type(error).__name__}: {error}"
print(json.dumps(failures))
"""


def test_every_module_imports_first():
    assert "steps" in MODULES and "roadmap.cli" in MODULES
    result = subprocess.run(
        [sys.executable, "-c", ONE_BY_ONE, *MODULES], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {}


def test_steps_then_roadmap_and_the_other_way_round():
    for order in ("import steps, roadmap; roadmap.specs('resnet50')", "import roadmap, steps; steps.REGISTRY['ln']"):
        result = subprocess.run([sys.executable, "-c", order], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr


def test_no_import_hides_inside_a_function():
    hidden = []
    for module in MODULES:
        path = ROOT / Path(*module.split(".")).with_suffix(".py")
        if not path.exists():
            path = ROOT / Path(*module.split(".")) / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [
                    f"{module}.{node.name}"
                    for inner in ast.walk(node)
                    if isinstance(inner, (ast.Import, ast.ImportFrom))
                ]
    assert not hidden


@pytest.mark.slow
def test_non_editable_install_runs_outside_the_checkout(tmp_path):
    """`pip install .` into a fresh environment: the paper's GFLOPs column comes from package data."""
    environment = tmp_path / "venv"
    # Without its own pip: ensurepip would put an old setuptools (without bdist_wheel) in front of the
    # machine's; the machine's pip then installs into this environment.
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import roadmap, steps; print(roadmap.__file__, steps.__file__)"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout + where.stderr
    table = subprocess.run(
        [str(python), "-m", "roadmap", "--flops-only", "--format", "csv"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr[-2000:]
    header, *rows = table.stdout.strip().splitlines()
    paper = header.split(",").index("paper_gflops")
    assert len(rows) == 17 and all(row.split(",")[paper] for row in rows)
    assert rows[0].split(",")[paper] == "4.09"
