#!/usr/bin/env bash
# The GPU figures still pending, as device calls of under 10 minutes each on an H100/H200 with 16 cores
# (a session's 15 device minutes hold one). Run from the project root on the GPU machine, after
# installing the wheels that machine lacks (../shared/gpu/README.md):
#
#   bash benchmarks/gpu_session.sh measure   # issue 10's opt-in decoding: the PPM copy compiled, then
#                                            # evaluation decoded by nvJPEG; then the quick tests on CUDA
#                                            # (at most 9 minutes)
#   bash benchmarks/gpu_session.sh profile   # where the compiled loop's time goes (benchmarks/loop_profile.py)
#   bash benchmarks/gpu_session.sh more      # --deterministic's cost, InceptionNeXt-T and V2-T ours/timm
#   bash benchmarks/gpu_session.sh suite     # the whole test suite on CUDA (SLURM tests skip)
#   bash benchmarks/gpu_session.sh trainer   # the trainer's tests on CUDA (schedules, groups, EMA, both
#                                            # weights evaluated, compiled), then the compiled profile
#
# Logs and JSON go to $OUT (the device tool brings them back) or ./gpu-out. JPEG folder: $JPEG, made
# with ../shared/gpu/gen_jpeg_folder.py if it does not exist (GEN names that script).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
JPEG=${JPEG:-/tmp/jpeg}; GEN=${GEN:-.gpu/gen_jpeg_folder.py}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
stamp() { echo "$1 rc=$2 at $(( $(date +%s) - T0 ))s" | tee -a "$OUT/times.txt"; }
loop() {  # loop() NAME SECONDS ARGS...: benchmarks/loop_vs_model.py on the folder, its JSON under NAME
  local name=$1 seconds=$2; shift 2
  timeout "$seconds" python3 benchmarks/loop_vs_model.py --data "$JPEG" --results "/tmp/lvm-$name" \
    --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  stamp "$name" $?
}
case "${1:-}" in
  measure)
    [ -d "$JPEG/train" ] || python3 "$GEN" "$JPEG" 1000 > /dev/null
    stamp jpeg-folder $?
    # Opt-in decoding: the PPM copy at 256 at the compiled speed (the GPU default), then the original
    # files with evaluation decoded by nvJPEG (eager).
    loop ppm-compiled 330 --compile --shrink 256 --shrink-format ppm
    loop eval-device 100 --no-compile --upto resnet50 --eval-decode device
    tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='*.pkl' -C /tmp lvm-ppm-compiled lvm-eval-device 2>/dev/null
    timeout $(( 530 - ($(date +%s) - T0) )) python3 -m pytest -n 14 -m "not slow" -p no:cacheprovider -v \
      --tb=short -o console_output_style=classic -k "not ruff_is_clean and not non_editable" > "$OUT/pytest.txt" 2>&1
    stamp pytest-quick $?
    ;;
  profile)
    # Why the compiled loop on the PPM copy ran at 0.75 of the model-only rate with 2% data wait
    # (2026-11-26): host-busy fraction, the step without its loader, a profiled epoch; eager beside it.
    [ -d "$JPEG/train" ] || python3 "$GEN" "$JPEG" 1000 > /dev/null
    for numerics in compile no-compile; do
      timeout 200 python3 benchmarks/loop_profile.py --out "$OUT/profile-$numerics" -- --preset paper \
        --dataset folder --data "$JPEG" --upto resnet50 --"$numerics" --shrink 256 --shrink-format ppm \
        --batch-size 128 --workers 14 --accumulation 1 --epochs 4 > "$OUT/profile-$numerics.log" 2>&1
      stamp "profile-$numerics" $?
    done
    ;;
  more)
    [ -d "$JPEG/train" ] || python3 "$GEN" "$JPEG" 1000 > /dev/null
    # The price of bit-reproducibility: the default pipeline, eager, with --deterministic.
    loop deterministic 110 --no-compile --upto resnet50 --deterministic
    timeout 100 python3 benchmarks/train_step_throughput.py --device cuda --compile --rounds 5 \
      --models inception_next_tiny,convnextv2_tiny > "$OUT/train_step_throughput.txt" 2>&1
    stamp train_step_throughput $?
    ;;
  trainer)
    timeout 330 python3 -m pytest -n 8 -p no:cacheprovider -v --tb=short -o console_output_style=classic \
      tests/test_optimisation.py tests/test_train.py tests/test_compile.py tests/test_codesign.py \
      tests/test_grn_inception.py tests/test_fcmae.py tests/test_recipes.py > "$OUT/pytest-trainer.txt" 2>&1
    stamp pytest-trainer $?
    grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest-trainer.txt" | tail -20
    [ -d "$JPEG/train" ] || python3 "$GEN" "$JPEG" 1000 > /dev/null
    timeout 210 python3 benchmarks/loop_profile.py --out "$OUT/profile-compile" -- --preset paper \
      --dataset folder --data "$JPEG" --upto resnet50 --compile --shrink 256 --shrink-format ppm \
      --batch-size 128 --workers 14 --accumulation 1 --epochs 4 > "$OUT/profile-compile.log" 2>&1
    stamp profile-compile $?
    ;;
  suite)
    timeout 540 python3 -m pytest -n 12 -p no:cacheprovider -v --tb=short -o console_output_style=classic \
      --continue-on-collection-errors -k "not ruff_is_clean and not non_editable" > "$OUT/pytest.txt" 2>&1
    stamp pytest $?
    grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.txt" | tail -20
    ;;
  *)
    echo "usage: bash benchmarks/gpu_session.sh measure|profile|more|suite|trainer" >&2
    exit 2
    ;;
esac
