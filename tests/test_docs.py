"""The documentation against the code: docs/results-format.md's figures, file names, keys and columns,
and the README's Python example run from folders that could shadow the package."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY_RUN
from test_train import tiny_task

import roadmap
from roadmap.files.layout import FORMAT_KEY, FORMAT_VERSION, PROGRESS_KEYS, RunPaths, StepPaths
from roadmap.files.records import PhaseResult, StepResult
from roadmap.launch.job import run_step
from roadmap.report.run_table import TABLE_COLUMNS
from roadmap.runs.info import RunInfo, RunRow
from roadmap.train import progress as progress_lines
from roadmap.train.presets import PRESETS, describe_resolution, proxy_recipe

RESULTS_FORMAT = (ROOT / "docs" / "results-format.md").read_text()
README = (ROOT / "README.md").read_text()
# Declared in StepPaths but written by nothing (no module opens it): not documented until something does.
UNWRITTEN = {"train.log"}


def documented_names(text: str) -> set[str]:
    """Every "quoted" or `backticked` word of a text: how the doc names keys, columns and files."""
    return set(re.findall(r'"([\w.-]+)"', text)) | set(re.findall(r"`([\w.<>/-]+)`", text))


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else len(text)]


def test_run_json_example_states_the_cpu_preset():
    # The example run.json is the default command's: its figures are the cpu preset's, and the
    # epochs are what the preset makes of the legacy (resnet50) and modern (recipe) recipes.
    cpu = PRESETS["cpu"]
    (_, legacy), (_, modern) = roadmap.specs("resnet50", upto="recipe")
    legacy_epochs, modern_epochs = (proxy_recipe(spec.recipe, cpu).epochs for spec in (legacy, modern))
    assert (legacy_epochs, modern_epochs) == (4, 12)
    example = RESULTS_FORMAT[RESULTS_FORMAT.index("`run.json`:\n```json") :]
    example = example[: example.index("```\n", len("`run.json`:\n```json"))]
    for stated in (
        f'"preset": "{cpu.name}"',
        f'"num_classes": {cpu.synthetic_classes}',
        f'"train_images": {cpu.synthetic_train}, "val_images": {cpu.synthetic_val}',
        f'"resolution": "{describe_resolution(cpu)}"',
        f'"epochs": "{legacy_epochs}/{modern_epochs}"',
        f'"epochs": {legacy_epochs}, "recipe": "legacy"',
        f'"params": {sum(parameter.numel() for parameter in roadmap.build(legacy).parameters())}',
    ):
        assert stated in example, stated
    # No other epoch pair is claimed anywhere in the doc (the old 5/15 of a previous preset).
    assert set(re.findall(r'"epochs": "(\d+/\d+)"', RESULTS_FORMAT)) == {f"{legacy_epochs}/{modern_epochs}"}
    # The README's preset table says the same.
    assert f"legacy {legacy_epochs} epochs, modern {modern_epochs}" in README


def test_every_file_name_the_code_spells_is_documented():
    run_paths, step_paths = RunPaths("RUN"), StepPaths(Path("RUN"), "step", 0)
    names = {
        value.name for paths in (run_paths, step_paths) for value in vars(paths).values() if isinstance(value, Path)
    }
    names -= {"RUN", "0"}  # the folders themselves
    assert {"run.json", "result.json", "metrics.jsonl", "task.json", "claim.lock", "report", "submitit"} <= names
    documented = documented_names(RESULTS_FORMAT) | set(re.findall(r"[\w.-]+\.(?:json|jsonl|pt|lock)", RESULTS_FORMAT))
    missing = sorted(name for name in names - UNWRITTEN if name not in documented and name not in RESULTS_FORMAT)
    assert not missing, f"docs/results-format.md does not name {missing}"
    assert run_paths.comparison("B").name == "vs-B" and "report/vs-<other>/" in RESULTS_FORMAT
    assert step_paths.phase("pretrain").folder.name == "pretrain" and "<step>/<seed>/pretrain/" in RESULTS_FORMAT


def test_run_json_keys_are_documented():
    keys = {field.name for field in dataclasses.fields(RunInfo)} | {field.name for field in dataclasses.fields(RunRow)}
    missing = sorted(keys - documented_names(RESULTS_FORMAT))
    assert not missing, f"run.json keys missing from docs/results-format.md: {missing}"


def test_result_json_fields_are_documented():
    """Every field of the two result records (roadmap.files.records) is named by the page, and the
    keys of the page's result.json example are fields of StepResult (or cost_* keys)."""
    for record in (StepResult, PhaseResult):
        names = {field.name for field in dataclasses.fields(record)} - {"cost"}
        missing = sorted(names - documented_names(RESULTS_FORMAT))
        assert not missing, f"{record.__name__} fields missing from docs/results-format.md: {missing}"
    example = re.search(r"`result.json`:\n```json\n(.*?)```", RESULTS_FORMAT, flags=re.S).group(1)
    fields = {field.name for field in dataclasses.fields(StepResult)} | {FORMAT_KEY}
    unknown = sorted(
        key for key in re.findall(r'"(\w+)":', example) if key not in fields and not key.startswith("cost_")
    )
    assert not unknown, f"the page's result.json example has keys StepResult lacks: {unknown}"


def test_result_records_read_back_what_they_write():
    trained = StepResult("done", "ln", 0, "k", top1=61.2, pretrain={"val_loss": 0.5}, cost={"cost_batch": 32})
    failed = StepResult("failed", "ln", 0, "k", reason="ValueError: bad")
    diverged = StepResult("diverged", "ln", 0, "k", reason="pre-training loss became NaN", pretrain={"x": 1})
    for record in (trained, failed, diverged):
        assert StepResult.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert list(failed.to_json()) == [FORMAT_KEY, "status", "step", "seed", "key", "reason"]
    assert list(diverged.to_json())[-2:] == ["reason", "pretrain"]
    written = trained.to_json()
    assert list(written)[:5] == [FORMAT_KEY, "status", "step", "seed", "key"] and "reason" not in written
    assert list(written)[-3:] == ["pretrain_loss", "pretrain", "cost_batch"] and written[FORMAT_KEY] == FORMAT_VERSION
    assert "pretrain" not in StepResult("done", "ln", 0, "k").to_json()
    phase = PhaseResult("done", "pretrain", "ln", 0, "k-pretrain", 1, 0.9, 0.8, 0.6, 64, 10.0, 1.0, "cpu", "e.pt")
    assert PhaseResult.from_json({**phase.to_json(), "added_later": 1}) == phase


def documented_json(heading: str) -> dict:
    """The JSON example that follows `heading` in docs/results-format.md."""
    start = RESULTS_FORMAT.index("```json\n", RESULTS_FORMAT.index(heading)) + len("```json\n")
    return json.loads(RESULTS_FORMAT[start : RESULTS_FORMAT.index("```\n", start)])


def test_progress_json_keys_match_a_real_run(tmp_path, monkeypatch):
    # progress.json is gone once the step ends, so every version a real tiny step writes is read
    # back from disk the moment it is written; the doc's example has exactly their keys.
    written = []

    def write_and_read_back(path: Path, data) -> None:
        write_json(path, data)
        written.append(json.loads(path.read_text()))

    write_json = progress_lines.write_json
    monkeypatch.setattr(progress_lines, "write_json", write_and_read_back)
    task = tiny_task(tmp_path, epochs=1)
    assert run_step(task)["status"] == "done" and not task.paths.progress.exists()
    documented = documented_json("`progress.json` (written")
    assert written and all(set(record) == set(documented) for record in written), (written, documented)
    assert set(PROGRESS_KEYS) <= set(documented) and written[-1]["phase"] is None
    assert written[-1]["batch"] == written[-1]["batches"] and written[-1]["epochs"] == 1


def test_table_columns_match_the_code():
    # The column table of "The report" lists every column of table.csv, in the code's order, and no other.
    rows = [line for line in section(RESULTS_FORMAT, "## The report").splitlines() if line.startswith("| `")]
    documented = [name for line in rows for name in re.findall(r"`(\w+)`", line.split("|")[1])]
    assert documented == list(TABLE_COLUMNS)


def test_default_run_table_matches_its_csv():
    # The README's condensed table of the default run and docs/default-run/table.csv agree.
    table = pd.read_csv(ROOT / "docs" / "default-run" / "table.csv")
    assert list(table.columns) == list(TABLE_COLUMNS), "docs/default-run is older than the table's columns"
    default_run = section(README, "## The default run")
    for row in table.itertuples():
        line = next(line for line in default_run.splitlines() if line.startswith(f"| `{row.step}` |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == row.label and cells[2] == f"{row.top1_mean:.2f}", line
        assert cells[4] == f"{row.paper_top1:.2f}" and cells[6] == f"{row.gflops:.2f}", line


@pytest.mark.slow
def test_a_written_run_matches_the_doc(tiny_run):
    # conftest's shared tiny run, as the CLI wrote it: its files, keys and columns are all documented.
    run = tiny_run.results / TINY_RUN
    documented = documented_names(RESULTS_FORMAT)
    # Inside submitit/, tensorboard/ and wandb/ the files are those tools' own.
    tools = {"submitit", "tensorboard", "wandb"}
    written = {path.name for path in run.rglob("*") if not tools & set(path.relative_to(run).parts[:-1])}
    written -= {TINY_RUN, "0", "1"} | {row["step"] for row in json.loads((run / "run.json").read_text())["rows"]}
    figures = {name for name in written if name.endswith((".png", ".pdf"))}
    assert figures and {Path(name).stem for name in figures} <= documented
    missing = sorted(name for name in written - figures if name not in RESULTS_FORMAT)
    assert not missing, f"files written but not in docs/results-format.md: {missing}"
    plan = json.loads((run / "run.json").read_text())
    result = json.loads((run / "resnet50" / "0" / "result.json").read_text())
    metrics = json.loads((run / "resnet50" / "0" / "metrics.jsonl").read_text().splitlines()[0])
    for what, keys in (("run.json", plan), ("run.json rows", plan["rows"][0]), ("result.json", result)):
        missing = sorted(set(keys) - documented)
        assert not missing, f"{what} keys missing from docs/results-format.md: {missing}"
    assert not sorted(set(metrics) - documented), "metrics.jsonl keys missing from docs/results-format.md"
    assert list(pd.read_csv(run / "report" / "table.csv").columns) == list(TABLE_COLUMNS)


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


@pytest.mark.parametrize("where", ["beside-roadmap-folders", "inside-a-folder-named-roadmap"])
def test_readme_python_example_runs_from_any_folder(tmp_path, where):
    # A folder holding roadmap/ and steps/ (the clone's parent, say) must not shadow the packages.
    for name in ("roadmap", "steps"):
        (tmp_path / name).mkdir()
    cwd = tmp_path if where == "beside-roadmap-folders" else tmp_path / "roadmap"
    finished = subprocess.run(
        [sys.executable, "-c", readme_python()], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split()[:4] == ["ln", "(1,", "1000)", "4.146"], finished.stdout
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["roadmap", "steps"]  # nothing written


def test_docs_the_readme_links_exist():
    for link in re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)\)", README):
        assert (ROOT / link).exists(), link
    assert len(README.splitlines()) < 300
