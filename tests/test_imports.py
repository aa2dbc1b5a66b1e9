"""Imports run one way: the layers of docs/architecture.md, read from the source (no subpackage
imports one above it, no cycle between subpackages), every module imports alone in a fresh
interpreter, none hides an import inside a function, `import steps` loads no torch, every error for
a user derives from one base, and a non-editable install finds its package data."""

import ast
import importlib
import inspect
import json
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from roadmap.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("roadmap", "steps")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


SOURCES = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
MODULES = sorted(name for name in SOURCES if not name.endswith("__main__"))

# The layers, lowest first: a module may import its own layer and those before it. The first is
# the package's plain data (spec, recipes, errors, files: no torch); docs/architecture.md draws it.
LAYERS = (
    "roadmap",
    "steps",
    "roadmap.network",
    "roadmap.cost",
    "roadmap.data",
    "roadmap.train",
    "roadmap.fcmae",
    "roadmap.runs",
    "roadmap.report",
    "roadmap.launch",
    "roadmap.cli",
)


def layer_of(module: str) -> str:
    """`roadmap.train.trainer` -> `roadmap.train`; the top-level modules and roadmap.files -> `roadmap`."""
    parts = module.split(".")
    if parts[0] == "steps":
        return "steps"
    candidate = ".".join(parts[:2])
    return candidate if candidate in LAYERS else "roadmap"


def imported_modules(path: Path) -> set[str]:
    """This project's modules that the file at `path` imports (at any depth of its syntax tree)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def layer_imports() -> dict[tuple[str, str], list[str]]:
    """{(importing layer, imported layer): ["module -> module", ...]} between different layers."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for module, path in SOURCES.items():
        if module in ("roadmap", "roadmap.__main__"):  # the package's lazy exports and `python -m`
            continue
        for target in imported_modules(path):
            if layer_of(module) != layer_of(target):
                arrows.setdefault((layer_of(module), layer_of(target)), []).append(f"{module} -> {target}")
    return arrows


def test_no_layer_imports_one_above_it():
    upward = [
        arrow
        for (importer, imported), found in layer_imports().items()
        if LAYERS.index(imported) > LAYERS.index(importer)
        for arrow in found
    ]
    assert not upward
    assert ("roadmap.train", "roadmap.fcmae") not in layer_imports()  # FCMAE plugs into the trainer


def test_no_cycle_between_subpackages():
    graph: dict[str, set[str]] = {}
    for importer, imported in layer_imports():
        graph.setdefault(importer, set()).add(imported)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for successor in graph.get(start, ()):
            if successor == goal or (successor not in seen and reaches(successor, goal, seen | {successor})):
                return True
        return False

    assert [layer for layer in LAYERS if reaches(layer, layer, set())] == []


def test_the_layers_are_the_subpackages():
    """Every subpackage of roadmap has a layer and a docstring saying what it owns; the top level
    holds at most six modules."""
    subpackages = {path.parent for path in (ROOT / "roadmap").glob("*/__init__.py")}
    named = {ROOT / Path(*layer.split(".")) for layer in LAYERS if layer.count(".") == 1}
    assert named <= subpackages and subpackages - named == {ROOT / "roadmap" / "files"}
    for package in subpackages | {path.parent for path in (ROOT / "roadmap").glob("*/*/__init__.py")}:
        assert ast.get_docstring(ast.parse((package / "__init__.py").read_text())), package
    assert len(list((ROOT / "roadmap").glob("*.py"))) <= 6


def test_every_module_has_its_line_in_the_architecture_page():
    """docs/architecture.md names every module of the package: by its path, or by its file name on a
    line that names its folder."""
    lines = (ROOT / "docs" / "architecture.md").read_text().splitlines()
    missing = []
    for path in sorted((ROOT / "roadmap").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        relative = path.relative_to(ROOT)
        folder = f"`{relative.parent.as_posix()}/"
        if not any(str(relative.as_posix()) in line or (folder in line and path.name in line) for line in lines):
            missing.append(relative.as_posix())
    assert not missing, f"modules without a line in docs/architecture.md: {missing}"


def test_steps_load_no_torch():
    check = "import steps, sys; assert 'torch' not in sys.modules, 'torch'; print(len(steps.REGISTRY))"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 19


def test_every_error_for_a_user_derives_from_the_one_base():
    errors = []
    for module in MODULES:
        for _, value in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module:
                errors.append(value)
    assert len(errors) >= 20
    # Terminated is SIGTERM taken as Ctrl-C: a signal, not an error.
    assert [error.__name__ for error in errors if not issubclass(error, (UserError, KeyboardInterrupt))] == []
    assert all(error.exit_code == 2 for error in errors if issubclass(error, UserError))


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
    assert "steps" in MODULES and "roadmap.cli.commands" in MODULES
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
        for node in ast.walk(ast.parse(SOURCES[module].read_text())):
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
