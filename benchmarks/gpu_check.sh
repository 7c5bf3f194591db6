#!/usr/bin/env bash
# The CUDA path on a machine with an NVIDIA GPU (issue 17, item 5). Prints ONE JSON line on stdout
# (all else goes to stderr) and exits 0 when every check passed, 1 when one failed, 2 when it
# could not run (no NVIDIA GPU or driver, no CUDA build of torch).
#
#   benchmarks/gpu_check.sh
#
# 1. Needs nvidia-smi (the NVIDIA driver); without it, says so and exits 2.
# 2. Installs the torch version pinned in requirements.txt, CUDA build, into a separate venv
#    (default /tmp/adf-gpu-venv, kept for the next run; .venv and requirements.txt are not
#    touched), plus the app's other runtime requirements.
# 3. Runs benchmarks/gpu_check.py: predictor on cuda (device text, ms per pair vs CPU), one
#    mixed-precision training step (fp16 + GradScaler, bf16) and a 3-step trainer run on cuda,
#    main.py --self-test --device cuda, and the CUDA->CPU fallback when the GPU runs out of
#    memory mid-run. The checks take about a minute on a recent GPU; the whole script is given
#    ADF_GPU_CHECK_TIMEOUT seconds (default 290) after the install.
#
# Environment:
#   ADF_GPU_VENV        venv folder (default /tmp/adf-gpu-venv)
#   ADF_TORCH_INDEX     where the CUDA build comes from (default https://download.pytorch.org/whl/cu128)
#   ADF_WHEELS          a folder of wheels to install from (offline machines), passed as --find-links
#   ADF_GPU_PYTHON      use this Python (which already has a CUDA torch and the requirements): no install
#   PYTHON              the Python that creates the venv (default python3.11, else python3)
set -u
cd "$(dirname "$0")/.." || exit 2
T0=$(date +%s)

json_error() {  # one JSON line {"ok": false, "error": ...}; python3 only escapes the text
  local msg=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys; print(json.dumps({"ok": False, "error": sys.argv[1]}))' "$msg"
  else
    printf '{"ok": false, "error": "%s"}\n' "$(printf '%s' "$msg" | tr -d '"\\')"
  fi
}
fail() { json_error "$1"; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: this check needs an NVIDIA GPU with its driver installed (the CUDA path stays unverified on this machine)"
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1)
[ -n "$GPU" ] && ! printf '%s' "$GPU" | grep -qiE 'fail|error|not found' || fail "nvidia-smi found no usable GPU: $GPU"
echo "gpu: $GPU" >&2

TORCH_PIN=$(sed -n 's/^\(torch==[^ #]*\).*/\1/p' requirements.txt | head -n 1)
[ -n "$TORCH_PIN" ] || fail "requirements.txt pins no torch version"
TORCH_VERSION=${TORCH_PIN#torch==}

if [ -n "${ADF_GPU_PYTHON:-}" ]; then
  PY=$ADF_GPU_PYTHON
  INSTALL_S=0
else
  VENV=${ADF_GPU_VENV:-/tmp/adf-gpu-venv}
  INDEX=${ADF_TORCH_INDEX:-https://download.pytorch.org/whl/cu128}
  PY=$VENV/bin/python
  have_cuda_torch() {
    "$PY" -c "import sys, torch; sys.exit(0 if torch.version.cuda and torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null
  }
  if [ -x "$PY" ] && have_cuda_torch; then
    echo "reusing $VENV (torch $TORCH_VERSION with CUDA)" >&2
  else
    BASE=${PYTHON:-$(command -v python3.11 || command -v python3)}
    [ -n "$BASE" ] || fail "no python3 to create the venv with"
    "$BASE" -m venv "$VENV" >&2 || fail "could not create the venv $VENV with $BASE"
    FIND=()
    [ -n "${ADF_WHEELS:-}" ] && FIND=(--find-links "$ADF_WHEELS")
    echo "installing $TORCH_PIN (CUDA build) from $INDEX into $VENV ..." >&2
    "$PY" -m pip install -q --disable-pip-version-check "${FIND[@]}" --index-url "$INDEX" \
      --extra-index-url https://pypi.org/simple "$TORCH_PIN" >&2 \
      || fail "could not install $TORCH_PIN from $INDEX (set ADF_TORCH_INDEX, ADF_WHEELS or ADF_GPU_PYTHON)"
    grep -vE '^(torch|pytest|pytest-qt|hypothesis|ruff|pyinstaller)==' requirements.txt | sed 's/#.*//' \
      | grep -v '^[[:space:]]*$' > "$VENV/adf-requirements.txt"
    "$PY" -m pip install -q --disable-pip-version-check "${FIND[@]}" -r "$VENV/adf-requirements.txt" >&2 \
      || fail "could not install the app's other requirements into $VENV"
    have_cuda_torch || fail "the torch installed in $VENV is not the CUDA build of $TORCH_VERSION"
  fi
  INSTALL_S=$(( $(date +%s) - T0 ))
fi

export QT_QPA_PLATFORM=offscreen QT_DRIVER=PySide6
timeout "${ADF_GPU_CHECK_TIMEOUT:-290}" "$PY" benchmarks/gpu_check.py --gpu "$GPU" --install-s "$INSTALL_S"
rc=$?
if [ $rc -eq 124 ]; then
  fail "the checks did not finish within ${ADF_GPU_CHECK_TIMEOUT:-290} s"
fi
exit $rc
