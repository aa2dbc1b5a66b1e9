"""Does the training loop keep the device busy? Loop, model-only, evaluation and --plan, one run.

    python benchmarks/loop_vs_model.py --data DIR [--upto recipe] [--epochs 2] [--batch-size 128]
                                       [--workers 14] [--compile | --no-compile] [--shrink 256 [--shrink-format ppm]]
                                       [--deterministic] [--eval-decode device] [--out DIR]

For each row of the roadmap up to --upto, on an ImageNet-style JPEG folder with `--preset paper`:
1. `--plan` predicts the row's images/s (min of model and loader, measured at the run's batch);
2. the row trains for --epochs with --measure-cost, whose cost setting is the training's own numerics
   (bf16 channels-last, compiled or eager), so the model-only figures are of the same network,
   batch and numerics as the loop;
3. from result.json: loop train images/s / model-only train images/s, the data-wait fraction,
   evaluation images/s / model-only inference images/s, and plan / loop; the same for the last
   epoch alone (metrics.jsonl), free of the first epoch's start-up.
Meant for a GPU machine (issue 10's targets: loop >= 0.90x model, data wait <= 5%, evaluation
>= 0.8x inference, plan within 15%); it runs on a CPU too, slowly. Writes loop_vs_model.json to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def roadmap_command(arguments, *extra: str) -> list[str]:
    command = [
        sys.executable,
        str(ROOT / "run_roadmap.py"),
        "--preset",
        arguments.preset,
        "--dataset",
        "folder",
        "--data",
        arguments.data,
        "--upto",
        arguments.upto,
        "--epochs",
        str(arguments.epochs),
        "--batch-size",
        str(arguments.batch_size),
        "--accumulation",
        "1",
        "--workers",
        str(arguments.workers),
        "--executor",
        "local",
        "--results",
        arguments.results,
    ]
    if arguments.compile is not None:
        command.append("--compile" if arguments.compile else "--no-compile")
    if arguments.shrink:
        command += ["--shrink", str(arguments.shrink), "--shrink-format", arguments.shrink_format]
    if arguments.deterministic:
        command.append("--deterministic")
    if arguments.eval_decode != "cpu":
        command += ["--eval-decode", arguments.eval_decode]
    return command + list(extra)


def row_of(step: str, planned: dict, result_path: Path) -> dict:
    """The figures of one trained row against its model-only rates and its plan."""
    result = json.loads(result_path.read_text())
    loop, model = result["train_images_per_s"], result["cost_train_images_per_s"]
    infer = result["cost_infer_images_per_s"]
    # The last epoch alone too: a 2-epoch proxy's first epoch holds start-up the mean does not hide.
    last = json.loads(result_path.with_name("metrics.jsonl").read_text().splitlines()[-1])
    return {
        "step": step,
        "device": result["device"],
        "numerics": f"{result['precision']}, "
        f"{'channels-last' if result['channels_last'] else 'NCHW'}, "
        f"{'compiled' if result['compiled'] else 'eager'}",
        "pixels": result["pixels"],
        "deterministic": result["deterministic"],
        "loop_images_per_s": round(loop, 1),
        "model_images_per_s": round(model, 1),
        "loop_over_model": round(loop / model, 3),
        "data_wait": round(result["data_wait_fraction"], 3),
        "eval_images_per_s": round(result["infer_images_per_s"], 1),
        "model_infer_images_per_s": round(infer, 1),
        "eval_over_infer": round(result["infer_images_per_s"] / infer, 3),
        "plan_images_per_s": planned["images_per_s"],
        "plan_bound": planned["bound"],
        "plan_over_loop": round(planned["images_per_s"] / loop, 3),
        "recompiles_after_first_epoch": result["recompiles_after_first_epoch"],
        "last_epoch_loop_over_model": round(last["images_per_s"] / model, 3),
        "last_epoch_data_wait": round(last["data_wait_s"] / last["epoch_time_s"], 3),
        "last_epoch_eval_over_infer": round(last["infer_images_per_s"] / infer, 3),
        "last_epoch_plan_over_loop": round(planned["images_per_s"] / last["images_per_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--upto", default="recipe", help="last row of the roadmap to train")
    parser.add_argument("--preset", default="paper", help="paper (default); tiny for a quick check of the script")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=14)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--shrink", type=int, default=None)
    parser.add_argument("--shrink-format", choices=("jpeg", "ppm"), default="jpeg")
    parser.add_argument("--deterministic", action="store_true", help="deterministic GPU kernels (its speed cost)")
    parser.add_argument("--eval-decode", choices=("cpu", "device"), default="cpu", help="where evaluation decodes")
    parser.add_argument("--results", default="/tmp/roadmap-loop-vs-model")
    parser.add_argument("--out", default=".")
    arguments = parser.parse_args()
    compiled = arguments.compile if arguments.compile is not None else True  # the GPU default
    setting = "bf16-compiled" if compiled else "bf16-cl"
    plan = subprocess.run(roadmap_command(arguments, "--plan", "--format", "json"), capture_output=True, text=True)
    if plan.returncode != 0:
        sys.exit(f"--plan failed: {plan.stderr.strip().splitlines()[-1]}")
    predicted = {row["step"]: row for row in json.loads(plan.stdout)}
    trained = subprocess.run(roadmap_command(arguments, "--measure-cost", "--cost-settings", setting))
    if trained.returncode != 0:
        sys.exit("training failed; see the run's submitit logs")
    rows = []
    for run_dir in Path(arguments.results).glob("*/run.json"):
        for step, planned in predicted.items():
            result_path = run_dir.parent / step / "0" / "result.json"
            if not result_path.exists():
                continue
            rows.append(row_of(step, planned, result_path))
    for row in rows:
        print("  ".join(f"{key}={value}" for key, value in row.items()))
    Path(arguments.out).mkdir(parents=True, exist_ok=True)
    (Path(arguments.out) / "loop_vs_model.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
