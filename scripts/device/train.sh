#!/usr/bin/env bash
# Train methods' shipped weights on a borrowed GPU machine in one time-boxed call.
#
# Such a machine is lent for minutes, reaches no network and has its own Python with torch but not every
# dependency of ours. So the work is split in two:
#
#   bash scripts/device/train.sh prepare [DATA[:jpeg]...]  # here: wheels that image lacks, data it cannot make
#   bash scripts/device/train.sh run PLAN[,PLAN...] SECONDS # there, from the repo's root, .device carried
#
# PLAN names scripts/device/PLAN.plan: a bash file that defines make_data (puts its data folders in the working
# directory, from .device/data) and RUNS, one "NAME|facetool train arguments" per run (no quotes: split on
# spaces). Every plan's runs go side by side on the one GPU (these nets are too small to fill it alone) and are
# stopped by SIGTERM SECONDS after the call began — `facetool train` then finishes its step and saves a
# checkpoint. Back under $OUT come each run's generator as it would ship (PLAN.NAME.safetensors: fp16,
# weight-averaged), device.log, and extras.tar.gz with each run's last sample grid, losses and log. Scoring is
# done back here with `facetool evaluate`.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=$(pwd)
PYTHON=${PYTHON:-python3}
CARRY_LIMIT=$((64 * 1048576))  # the device tool's limit on the working tree and carried paths together
MAX_RUNS=6                     # 8 files come back: a generator per run, the log and the archive

usage() { echo "usage: train.sh prepare [DATA[:jpeg]...] | run PLAN[,PLAN...] SECONDS" >&2; exit 2; }

prepare() {
    local spec folder
    for spec in "$@"; do  # every folder checked before .device is touched
        folder=${spec%:jpeg}
        [[ -f $folder/manifest.jsonl ]] || { echo "$folder: not a facetool data folder" >&2; exit 2; }
    done
    # Built in a new folder and swapped in only when complete and small enough to carry.
    local next=.device.next
    rm -rf "$next" && mkdir -p "$next/wheels" "$next/data"
    # The device image (the device tool's KINDS.md) has torch, typer, rich, pluggy, safetensors, pillow, numpy
    # and onnxruntime; kornia and its Rust core are what training needs beyond them.
    "$PYTHON" -m pip download -q --no-deps -d "$next/wheels" kornia==0.9.0
    "$PYTHON" -m pip download -q --no-deps -d "$next/wheels" --python-version 3.12 --only-binary=:all: \
        --platform manylinux_2_17_x86_64 kornia_rs==0.2.0
    # Data it cannot make (the factory's photos need OpenVINO, its cartoons cairosvg); FOLDER:jpeg for photos.
    for spec in "$@"; do
        folder=${spec%:jpeg}
        cp -r "$folder" "$next/data/$(basename "$folder")"
        if [[ $spec == *:jpeg ]]; then "$PYTHON" scripts/device/helpers.py jpeg "$next/data/$(basename "$folder")"; fi
    done
    local bytes
    bytes=$( (git ls-files -z --cached --others --exclude-standard; find "$next" -type f -print0) \
        | { xargs -0 stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
    echo "a call would carry $((bytes / 1048576)) MiB of $((CARRY_LIMIT / 1048576))"
    if ((bytes > CARRY_LIMIT)); then
        rm -rf "$next"
        echo "too much to carry (.device left as it was): give less data, or photos as FOLDER:jpeg" >&2
        exit 1
    fi
    rm -rf .device && mv "$next" .device
    du -sh .device/*
}

install() {
    if ! "$PYTHON" -c "import kornia" 2>/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --disable-pip-version-check --find-links .device/wheels \
            kornia kornia_rs
    fi
    # --no-deps: the image's torch stays; dlib-bin and the other detector backends are not needed to train.
    if "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --disable-pip-version-check -e .; then
        # The `facetool` command lands beside that Python's other scripts, which need not be on PATH.
        PATH=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH
    else
        echo "pip could not install the checkout; running it from the source tree instead"
        "$PYTHON" scripts/device/helpers.py shim "$WORK/site"
        export PYTHONPATH=$HERE:$HERE/plugins:$WORK/site${PYTHONPATH:+:$PYTHONPATH}
        mkdir -p "$WORK/bin"
        printf '#!/bin/sh\nexec %q -m facetool "$@"\n' "$(command -v "$PYTHON")" > "$WORK/bin/facetool"
        chmod +x "$WORK/bin/facetool"
        PATH=$WORK/bin:$PATH
    fi
}

run() {
    local started=$SECONDS plans seconds=$2 plan
    IFS=, read -r -a plans <<< "$1"
    ((${#plans[@]})) || usage
    for plan in "${plans[@]}"; do
        [[ -f scripts/device/$plan.plan ]] || { echo "no plan scripts/device/$plan.plan" >&2; exit 2; }
    done
    if [[ $(printf '%s\n' "${plans[@]}" | sort | uniq -d) ]]; then echo "a plan is named twice" >&2; exit 2; fi
    # Up to 500 s: a call may run 600; a run gets 45 s more to save after SIGTERM, exporting and packing ~30.
    if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 60 || seconds > 500)); then
        echo "SECONDS must be a whole number from 60 to 500" >&2
        exit 2
    fi
    OUT=${OUT:?set OUT to the folder whose files come back}
    WORK=${WORK:-/tmp/facetool-device}
    rm -rf "${WORK:?}" && mkdir -p "$WORK/extras"
    exec > >(tee -a "$OUT/device.log") 2>&1
    local tee_pid=$!
    date -u +"start %FT%TZ"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    install
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

    # Every plan's data first: a plan whose data is missing stops the call before any GPU time is spent.
    local entry name names=() args=()
    for plan in "${plans[@]}"; do
        unset -f make_data
        RUNS=()
        # shellcheck source=/dev/null
        source "scripts/device/$plan.plan"
        declare -F make_data > /dev/null && ((${#RUNS[@]})) || { echo "$plan.plan: no make_data or RUNS"; exit 1; }
        mkdir -p "$WORK/$plan" && (cd "$WORK/$plan" && make_data)
        for entry in "${RUNS[@]}"; do
            names+=("$plan.${entry%%|*}") args+=("$plan|${entry#*|}")
        done
    done
    ((${#names[@]} <= MAX_RUNS)) || { echo "${#names[@]} runs: at most $MAX_RUNS come back"; exit 1; }

    local pids=() i left=$((seconds - (SECONDS - started)))
    echo "training ${names[*]} for ${left} s"
    for i in "${!names[@]}"; do
        plan=${args[$i]%%|*}
        # shellcheck disable=SC2086  # the plan's arguments are split on spaces, as documented
        (cd "$WORK/$plan" && timeout -s TERM -k 45 "$left" facetool train ${args[$i]#*|} --out "$WORK/${names[$i]}" \
            --device "${DEVICE:-cuda}" > "$WORK/extras/${names[$i]}.log" 2>&1) &
        pids+=("$!")
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || echo "${names[$i]}: facetool train exited $? (124: stopped by the time box; 137: killed, no save)"
        tail -n 2 "$WORK/extras/${names[$i]}.log"
    done

    local runs=()
    for name in "${names[@]}"; do
        runs+=("$WORK/$name")
        grid=$(find "$WORK/$name/samples" -name '*.png' 2>/dev/null | sort | tail -n 1 || true)
        if [[ -n $grid ]]; then cp "$grid" "$WORK/extras/$name.png"; fi
        if [[ -f $WORK/$name/losses.jsonl ]]; then cp "$WORK/$name/losses.jsonl" "$WORK/extras/$name.losses.jsonl"; fi
    done
    "$PYTHON" scripts/device/helpers.py export "$OUT" "${runs[@]}" || echo "some runs were not exported"
    tar -czf "$OUT/extras.tar.gz" -C "$WORK" extras
    date -u +"end %FT%TZ ($((SECONDS - started)) s)"
    exec >&- 2>&-
    wait "$tee_pid" || true
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run) shift; [[ $# -eq 2 ]] || usage; run "$@" ;;
    *) usage ;;
esac
