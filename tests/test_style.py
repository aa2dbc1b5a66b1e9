"""The tree is clean under ruff (settings in ruff.toml): lint (pyflakes, pycodestyle, import order)
and format. `ruff check --fix . && ruff format .` repairs most of what this finds. The package's
modules and functions stay short enough to read (docs/architecture.md)."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff is part of the test extras: pip install -e '.[test]'"
    result = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


MODULE_LINES, FUNCTION_LINES = 400, 60


def test_modules_and_functions_stay_readable():
    too_long = []
    for path in sorted([*(ROOT / "roadmap").rglob("*.py"), *(ROOT / "steps").rglob("*.py"), ROOT / "run_roadmap.py"]):
        text = path.read_text()
        name = path.relative_to(ROOT).as_posix()
        if len(text.splitlines()) > MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    too_long.append(f"{name}: {node.name}() {length} lines")
    assert not too_long, f"over {MODULE_LINES} lines a module or {FUNCTION_LINES} a function: {too_long}"
