"""run.json as a typed record: RunInfo writes the file it always wrote and reads older runs' files."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from roadmap.files.atomic import UnreadableFile, read_json, write_json
from roadmap.files.layout import RunPaths
from roadmap.runs.info import RunInfo
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run, write_plan

# Keys run.json gained after its first version: a plan written before them still loads.
NEWER_KEYS = (
    "model",
    "train_images",
    "val_images",
    "pixels",
    "skipped",
    "notes",
    "reference_note",
    "epochs",
    "overrides",
)
NEWER_ROW_KEYS = ("pretrain", "pretrain_epochs", "seed_keys")
# The co-design roadmap has FCMAE rows and notes; leave-one-out on ConvNeXt V2 skips a row.
PLANS = {
    "codesign": RunOptions(roadmap="convnext_v2_codesign", preset="tiny", seeds=2),
    "leave-one-out": RunOptions(roadmap="convnext_v2", mode="leave_one_out", preset="tiny"),
}


def written_plan(tmp_path: Path, options: RunOptions) -> Path:
    """run.json of a planned run (nothing trains)."""
    plan = plan_run(replace(options, results=str(tmp_path)))
    write_plan(plan)
    return RunPaths(plan.run_dir).plan


def older_form(run_json: dict) -> dict:
    """run.json as the first planners wrote it: none of the keys added since."""
    older = {key: value for key, value in run_json.items() if key not in NEWER_KEYS}
    older["rows"] = [{key: value for key, value in row.items() if key not in NEWER_ROW_KEYS} for row in older["rows"]]
    return older


@pytest.mark.parametrize("name", PLANS)
def test_run_json_round_trips(tmp_path, name):
    path = written_plan(tmp_path, PLANS[name])
    on_disk = read_json(path)
    info = RunInfo.from_json(on_disk)
    assert info.to_json() == on_disk and list(info.to_json()) == list(on_disk)
    assert json.dumps(info.to_json(), indent=2) == path.read_text()  # the same bytes (write_json's form)
    if name == "codesign":
        assert info.notes and info.rows[-1].pretrain_epochs > 0 and info.seeds == (0, 1)
        assert set(info.rows[0].seed_keys) == {"0", "1"}
    else:
        assert [skipped.step for skipped in info.skipped] == ["without_invert"]


def test_older_run_json_without_newer_keys_loads(tmp_path):
    on_disk = read_json(written_plan(tmp_path, PLANS["codesign"]))
    info = RunInfo.from_json(older_form(on_disk))
    assert info.model is None and info.train_images is None and info.pixels is None
    assert info.skipped == () and info.notes == () and info.reference_note is None and info.overrides == ()
    assert info.epochs == on_disk["epochs"]  # what the planner records: the rows' distinct epoch counts
    assert [row.step for row in info.rows] == [row["step"] for row in on_disk["rows"]]
    assert all(row.pretrain is None and row.pretrain_epochs == 0 and row.seed_keys == {} for row in info.rows)


def test_rows_of_an_older_plan_are_kept(tmp_path):
    """A shorter plan in the folder of a longer one keeps the longer one's rows, older files too."""
    path = written_plan(tmp_path, RunOptions(upto="stage_ratio", preset="tiny"))
    write_json(path, older_form(read_json(path)))
    written_plan(tmp_path, RunOptions(upto="recipe", preset="tiny"))
    rows = read_json(path)["rows"]
    assert [row["step"] for row in rows] == ["resnet50", "recipe", "stage_ratio"]
    assert rows[0]["seed_keys"] == {"0": rows[0]["seed_keys"]["0"]} and rows[2]["seed_keys"] == {}


def test_a_file_that_is_no_plan_stops_planning(tmp_path):
    path = written_plan(tmp_path, RunOptions(upto="recipe", preset="tiny"))
    write_json(path, {"rows": []})
    with pytest.raises(UnreadableFile, match="not a run plan"):
        plan_run(RunOptions(upto="recipe", preset="tiny", results=str(tmp_path)))
