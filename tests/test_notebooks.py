"""Every notebook runs top to bottom in a real Jupyter kernel, on the tiny preset."""

import json
from pathlib import Path

import matplotlib.image
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


def test_explore_notebook_says_what_it_trains_first():
    # Before any cell trains, the first one says what a run without results trains and for about how long.
    notebook = nbformat.read(ROOT / "notebooks" / "explore_roadmap.ipynb", as_version=4)
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    for stated in ("13 rows", "about 10 to 13 minutes", "leave-one-out", "about 1.5 minutes", "about a minute"):
        assert stated in first.source, stated
    trains = [index for index, cell in enumerate(notebook.cells) if "train_roadmap(" in cell.source]
    assert trains and min(trains) > 1  # the set-up cell only reports what exists


def tree_files() -> set[Path]:
    """The notebooks folder's files: executing a notebook must add none (no *.nbconvert.ipynb, no results)."""
    return {path for path in (ROOT / "notebooks").rglob("*") if path.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_executes(path, tmp_path, monkeypatch, tiny_run):
    # The notebook's first run (tiny, up to stage_ratio, one seed) finds its three rows trained by
    # conftest's shared run (keys do not depend on the number of seeds) and writes its own report.
    tiny_run.copy_to(tmp_path, keep_report=False)
    monkeypatch.setenv("ROADMAP_NOTEBOOK_PRESET", "tiny")
    monkeypatch.setenv("ROADMAP_NOTEBOOK_UPTO", "stage_ratio")
    monkeypatch.setenv("ROADMAP_NOTEBOOK_RESULTS", str(tmp_path))
    before = tree_files()
    notebook = nbformat.read(path, as_version=4)
    # Executed in memory with the kernel's working folder in tmp_path: nothing lands in the tree.
    kernel_folder = tmp_path / "kernel"
    kernel_folder.mkdir()
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(kernel_folder)}}
    ).execute()
    assert tree_files() == before
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    report = tmp_path / "resnet50-tiny-synthetic" / "report"
    for name in ("roadmap", "trajectory", "throughput", "curves", "changes"):
        image = matplotlib.image.imread(report / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0
    for name in ("resnet50", "resnet200"):
        assert (tmp_path / "reference-figures" / f"{name}.png").stat().st_size > 10_000
    loo = tmp_path / "resnet50-tiny-synthetic-leave-one-out" / "report" / "roadmap.png"
    assert matplotlib.image.imread(loo).std() > 0
    images = [
        output for cell in notebook.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
    ]
    # The co-design roadmap (issue 13): four rows, FCMAE rows with their pre-training, the table and figure.
    codesign_run = tmp_path / "convnext-v2-codesign-tiny-synthetic"
    for step in ("v1_supervised", "v1_fcmae", "v2_supervised", "v2_fcmae"):
        result = json.loads((codesign_run / step / "0" / "result.json").read_text())
        assert result["status"] == "done" and result["resolution"] == 64  # raised from 32: two 32 px patches
        assert (codesign_run / step / "0" / "pretrain" / "encoder.pt").exists() == step.endswith("fcmae")
        assert (result.get("pretrain_loss") or 0) > 0 if step.endswith("fcmae") else "pretrain" not in result
    codesign = codesign_run / "report"
    assert matplotlib.image.imread(codesign / "codesign.png").std() > 0
    text = (codesign / "codesign.md").read_text()
    for value in ("83.80", "83.70", "84.30", "84.60", "-0.10", "+0.30", "+0.40", "not ImageNet"):
        assert value in text, value
    assert "pre-training loss" in (codesign / "table.md").read_text()
    # five run figures, two reference figures, the leave-one-out figure (a), the co-design figure
    assert len(images) >= 9
