"""Recipe overrides: `--set [RECIPE.]FIELD=VALUE` and `--config FILE` change the rows they name
(their recorded recipe, their keys, the caption) and nothing else; bad ones are one line, exit 2.

Rows are planned through the command line's own parsing (nothing trains): the tiny preset's
`--upto recipe` has one legacy row (resnet50) and one modern row (recipe)."""

import json

import pytest
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap.cli.arguments import build_parser
from roadmap.cli.commands import main, run_options
from roadmap.files.atomic import read_json
from roadmap.report.captions import table_caption
from roadmap.report.run_table import aggregate
from roadmap.runs.info import RunInfo
from roadmap.runs.plan import plan_run, write_plan
from roadmap.runs.seeds import collect, load_run

ROWS = ("--upto", "recipe", "--preset", "tiny")


def planned(tmp_path, *extra: str, rows: tuple[str, ...] = ROWS):
    """The plan the command line makes of `rows` plus `extra` (parsed as run_roadmap.py parses them)."""
    return plan_run(run_options(build_parser().parse_args([*rows, "--results", str(tmp_path), *extra])))


def keys(plan) -> dict[str, tuple[str, dict[str, str]]]:
    return {row.step: (row.key, dict(row.seed_keys)) for row in plan.info.rows}


def recipes(plan) -> dict[str, dict]:
    return {task.step: task.spec.to_dict()["recipe"] for task in plan.tasks}


def test_set_lr_changes_the_recipe_the_keys_and_the_caption(tmp_path):
    base, changed = planned(tmp_path), planned(tmp_path, "--set", "lr=2e-3")
    assert {step: recipe["lr"] for step, recipe in recipes(base).items()} == {"resnet50": 0.1, "recipe": 4e-3}
    assert {step: recipe["lr"] for step, recipe in recipes(changed).items()} == {"resnet50": 2e-3, "recipe": 2e-3}
    # Only lr differs in what each row trains, and every row's key (and seed key) is another.
    for step, recipe in recipes(changed).items():
        assert {name for name, value in recipe.items() if recipes(base)[step][name] != value} == {"lr"}
        assert keys(changed)[step][0] != keys(base)[step][0]
        assert keys(changed)[step][1]["0"] != keys(base)[step][1]["0"]
    write_plan(changed)
    on_disk = read_json(changed.run_dir / "run.json")
    assert on_disk["overrides"] == [
        {
            "typed": "lr=2e-3",
            "source": "--set",
            "scope": None,
            "field": "lr",
            "value": 2e-3,
            "replaced": {"legacy": [0.1], "modern": [4e-3]},
        }
    ]
    assert RunInfo.from_json(on_disk).to_json() == on_disk
    # The report's caption, built as the report builds it from the run folder (no step has finished).
    run_info = load_run(changed.run_dir)
    frame = collect(changed.run_dir)
    caption = table_caption(run_info, aggregate(frame, run_info), frame)
    assert "Overridden (--set / --config): lr 0.002 instead of 0.1 (legacy) / 0.004 (modern)." in caption
    write_plan(base)  # the same run folder planned without overrides: none recorded, none named
    assert read_json(base.run_dir / "run.json")["overrides"] == []
    assert "Overridden" not in table_caption(load_run(base.run_dir), aggregate(frame, load_run(base.run_dir)))


def test_scoped_set_touches_only_that_recipes_rows(tmp_path):
    base = planned(tmp_path)
    scoped = planned(tmp_path, "--set", "legacy.lr=0.2", "--set", "legacy.epochs=300")
    assert recipes(scoped)["recipe"] == recipes(base)["recipe"] and keys(scoped)["recipe"] == keys(base)["recipe"]
    assert keys(scoped)["resnet50"] != keys(base)["resnet50"]
    assert recipes(scoped)["resnet50"]["lr"] == 0.2
    # epochs are the recipe's as the paper states them: the preset scales 300 as it scales 90 (1/150).
    assert [row.epochs for row in base.info.rows] == [1, 2] and [row.epochs for row in scoped.info.rows] == [2, 2]
    # A recipe's own scope wins over an unscoped override of the same field, in either order.
    for flags in (("lr=1e-3", "legacy.lr=0.2"), ("legacy.lr=0.2", "lr=1e-3")):
        both = planned(tmp_path, "--set", flags[0], "--set", flags[1])
        assert {step: recipe["lr"] for step, recipe in recipes(both).items()} == {"resnet50": 0.2, "recipe": 1e-3}


def test_plan_command_with_set(tmp_path, capsys):
    argv = [*ROWS, "--results", str(tmp_path), "--plan", "--throughput", "50", "--loader-throughput", "50"]
    assert main([*argv, "--format", "json", "--set", "legacy.epochs=300"]) == 0
    assert [row["epochs"] for row in json.loads(capsys.readouterr().out)] == [2, 2]
    assert list(tmp_path.iterdir()) == []  # --plan writes nothing


TOML = """\
[set]
lr = 2e-3
opt_betas = [0.9, 0.95]
color_jitter = "none"
[set.legacy]
epochs = 300
"""
YAML = """\
set:
  lr: 2e-3
  opt_betas: [0.9, 0.95]
  color_jitter: null
  legacy:
    epochs: 300
"""
FLAGS = ("lr=2e-3", "opt_betas=0.9,0.95", "color_jitter=none", "legacy.epochs=300")


@pytest.mark.parametrize("name, text", [("set.toml", TOML), ("set.yaml", YAML)])
def test_config_file_gives_the_same_keys_as_set_flags(tmp_path, name, text):
    config = tmp_path / name
    config.write_text(text)
    from_file = planned(tmp_path, "--config", str(config))
    from_flags = planned(tmp_path, *(item for flag in FLAGS for item in ("--set", flag)))
    assert keys(from_file) == keys(from_flags) and recipes(from_file) == recipes(from_flags)
    assert keys(from_file)["resnet50"] != keys(planned(tmp_path))["resnet50"]
    assert recipes(from_file)["resnet50"]["opt_betas"] == (0.9, 0.95) and recipes(from_file)["resnet50"]["epochs"] == 2
    assert [override["source"] for override in from_file.info.overrides] == [f"--config {config}"] * len(FLAGS)


def test_pretrain_scope_sets_the_fcmae_rows(tmp_path):
    rows = ("--steps", "patchify,ln,sep_ds,fcmae", "--preset", "tiny")
    base = planned(tmp_path, rows=rows)
    masked = planned(tmp_path, "--set", "pretrain.mask_ratio=0.75", rows=rows)
    assert [task.spec.pretrain and task.spec.pretrain.mask_ratio for task in masked.tasks] == [
        None,
        None,
        None,
        None,
        0.75,
    ]
    assert keys(masked)["fcmae"] != keys(base)["fcmae"] and keys(masked)["ln"] == keys(base)["ln"]


def bad_config(tmp_path, name: str, text: str) -> list[str]:
    (tmp_path / name).write_text(text)
    return ["--config", str(tmp_path / name)]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--set", "nonsense=1"], "unknown recipe field 'nonsense'; valid fields: epochs, batch_size"),
        (["--set", "lr=abc"], "--set lr=abc: lr takes a number, got 'abc'"),
        (["--set", "opt_betas=0.9"], "opt_betas takes 2 comma-separated values"),
        (["--set", "lr"], "--set takes [RECIPE.]FIELD=VALUE"),
        (["--set", "nosuch.lr=1"], "unknown recipe 'nosuch'; choose one of: legacy, modern, v2-finetune-atto"),
        (
            ["--set", "v2-finetune-base.lr=1"],
            "no row of this run uses the v2-finetune-base recipe; its rows use: legacy",
        ),
        (["--set", "pretrain.mask_ratio=0.5"], "no row of this run pre-trains"),
        (["--set", "epochs=0"], "resnet50 with --set epochs=0: recipe epochs and batch_size must be positive"),
        (["--set", "lr=1", "--set", "lr=2"], "--set lr=1 and --set lr=2 set the same field"),
        (["--epochs", "3", "--set", "epochs=100"], "--epochs 3 sets the epochs every row trains"),
        (["--config", "missing.toml"], "--config missing.toml: cannot read it"),
        (["--config", "set.ini"], "name a .toml, .yaml or .yml file"),
    ],
)
def test_bad_override_is_one_line_exit_2(tmp_path, capsys, extra, expected):
    assert expected in one_error_line(capsys, [*ROWS, "--results", str(tmp_path), "--plan", *extra])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("bad.toml", "[set]\nlr = \n", "not valid TOML"),
        ("bad.yaml", "set: [lr\n", "not valid YAML"),
        ("other.toml", "lr = 2e-3\n", "expected only a table `set`"),
        ("field.toml", "[set]\nnonsense = 1\n", "unknown recipe field 'nonsense'"),
        ("type.toml", "[set]\nepochs = 100.5\n", "epochs takes an integer, got 100.5"),
    ],
)
def test_bad_config_file_is_one_line_exit_2(tmp_path, capsys, name, text, expected):
    argv = [*ROWS, "--results", str(tmp_path / "results"), "--plan", *bad_config(tmp_path, name, text)]
    assert expected in one_error_line(capsys, argv)
