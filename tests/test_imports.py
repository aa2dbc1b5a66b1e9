"""Imports run one way: every module imports alone in a fresh interpreter, in any order, none
hides an import inside a function, and a non-editable install finds its package data."""

import ast
import json
import site
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


def pip(arguments: list[str], cwd: Path) -> None:
    """This environment's pip, which must succeed."""
    command = [sys.executable, "-m", "pip", *arguments]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_non_editable_install_runs_outside_the_checkout(tmp_path):
    """`pip install .` into a fresh environment: the paper's GFLOPs column comes from package data."""
    environment = tmp_path / "venv"
    # Neither the base interpreter's packages nor its packaging tools: an old base setuptools without
    # bdist_wheel (and no `wheel`) failed this install. The wheel is built by this environment's
    # setuptools (a test extra), installed with its pip, and the dependencies come from here.
    venv.create(environment, system_site_packages=False, with_pip=False)
    python = environment / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wheels = tmp_path / "wheels"
    pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], tmp_path)
    pip(["install", "-q", "--no-deps", "--target", purelib, *map(str, wheels.glob("roadmap-*.whl"))], tmp_path)
    # A .pth line adds this environment's packages as a plain path: its own .pth files (the editable
    # install's finder among them) are not processed there, so `roadmap` resolves to the wheel's copy.
    (Path(purelib) / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
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
