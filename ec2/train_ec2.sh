#!/usr/bin/env bash
# Train on an EC2 instance (Deep Learning AMI or any Linux with Python 3.10+) with the same training/train.py and
# hyperparameters SageMaker uses, then package model.tar.gz in SageMaker's layout. See ec2/README.md.
#
# Usage: ec2/train_ec2.sh --data <s3://bucket/prefix/ | dir | dogImages.zip> [options] [-- <train.py hyperparameters>]
#   --work DIR        working directory (default ./ec2-run); gets data/, model/, output/, checkpoints/, model.tar.gz
#   --python PATH     use this interpreter (must have torch + torchvision); skips venv creation
#   --gpus N          processes per node (default: number of GPUs from nvidia-smi, else 1)
#   --upload S3URI    copy model.tar.gz (and output.tar.gz) to this S3 prefix when done
# Env: VENV=DIR uses (or creates) the venv there instead of <work>/venv.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "train_ec2: error: $*" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="" WORK="ec2-run" PYTHON_BIN="" GPUS="" UPLOAD=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="${2:?--data needs a value}"; shift 2 ;;
    --work) WORK="${2:?--work needs a value}"; shift 2 ;;
    --python) PYTHON_BIN="${2:?--python needs a value}"; shift 2 ;;
    --gpus) GPUS="${2:?--gpus needs a value}"; shift 2 ;;
    --upload) UPLOAD="${2:?--upload needs a value}"; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (valid: --data --work --python --gpus --upload --help, then -- hyperparameters)" ;;
  esac
done
HPARAMS=("$@")
[[ -n "$DATA" ]] || die "--data is required (s3://bucket/prefix/, a directory holding train/ valid/ test/, or dogImages.zip)"
[[ -z "$GPUS" || "$GPUS" =~ ^[1-9][0-9]*$ ]] || die "invalid --gpus '$GPUS' (expected a positive integer)"
[[ -z "$UPLOAD" || "$UPLOAD" == s3://* ]] || die "invalid --upload '$UPLOAD' (expected s3://bucket/prefix)"
if [[ "$DATA" != s3://* ]]; then
  [[ -e "$DATA" ]] || die "data path '$DATA' does not exist"
  if [[ -d "$DATA" && ! -d "$DATA/train" && ! -d "$DATA/dogImages/train" ]]; then
    die "$DATA has no train/ folder (expected the dogImages layout train/ valid/ test/)"
  fi
fi
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

# 1. Python: an explicit interpreter, or a venv that reuses the AMI's torch (system site packages) when present.
if [[ -n "$PYTHON_BIN" ]]; then
  PY="$PYTHON_BIN"
else
  VENV_DIR="${VENV:-$WORK/venv}"
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    echo "train_ec2: creating venv $VENV_DIR"
    python3 -m venv --system-site-packages "$VENV_DIR"
  fi
  PY="$VENV_DIR/bin/python"
  if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
    "$PY" -m pip install -q torch torchvision
  fi
  "$PY" -m pip install -q -r "$REPO/training/requirements.txt" matplotlib
fi
"$PY" -c "import torch, torchvision" || die "$PY cannot import torch and torchvision"

# 2. Data: S3 prefix, local zip or local directory, always ending as a dir holding train/ valid/ test/.
case "$DATA" in
  s3://*)
    command -v aws >/dev/null || die "the aws CLI is needed to fetch $DATA"
    aws s3 sync --only-show-errors "$DATA" "$WORK/data"
    DATA_DIR="$WORK/data" ;;
  *.zip)
    (cd "$REPO" && "$PY" -m tools.dataset unzip --zip "$DATA" --out "$WORK/data")
    DATA_DIR="$WORK/data" ;;
  *)
    [[ -d "$DATA" ]] || die "data path '$DATA' does not exist"
    DATA_DIR="$(cd "$DATA" && pwd)" ;;
esac
[[ -d "$DATA_DIR/dogImages/train" ]] && DATA_DIR="$DATA_DIR/dogImages"
for split in train valid test; do
  [[ -d "$DATA_DIR/$split" ]] || die "$DATA_DIR has no $split/ folder (expected the dogImages layout train/ valid/ test/)"
done

# 3. Train with the SageMaker environment contract, so train.py behaves exactly as in a training job.
rm -rf "$WORK/model" "$WORK/output"
mkdir -p "$WORK/model" "$WORK/output/data" "$WORK/checkpoints"
export SM_MODEL_DIR="$WORK/model" SM_OUTPUT_DIR="$WORK/output" SM_OUTPUT_DATA_DIR="$WORK/output/data"
export SM_CHANNEL_TRAINING="$DATA_DIR" SM_HOSTS='["algo-1"]' SM_CURRENT_HOST="algo-1"
unset SM_CHANNEL_TRAIN SM_CHANNEL_VALID SM_CHANNEL_TEST SM_INPUT_DATA_CONFIG
export TRAINING_JOB_NAME="${TRAINING_JOB_NAME:-ec2-$(date -u +%Y%m%dT%H%M%SZ)}"
if [[ -z "$GPUS" ]]; then
  GPUS=1
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    GPUS="$(nvidia-smi -L | grep -c '^GPU')"
  fi
fi
export SM_NUM_GPUS="$GPUS"
ARGS=(--checkpoint-dir "$WORK/checkpoints" "${HPARAMS[@]}")
echo "train_ec2: job $TRAINING_JOB_NAME, $GPUS process(es), data $DATA_DIR"
if [[ "$GPUS" -gt 1 ]]; then
  "$PY" -m torch.distributed.run --standalone --nproc_per_node "$GPUS" "$REPO/training/train.py" "${ARGS[@]}"
else
  "$PY" "$REPO/training/train.py" "${ARGS[@]}"
fi

# 4. Package exactly like SageMaker: the model dir's entries at the archive root (model.pth, code/inference.py...).
(cd "$WORK/model" && tar -czf "$WORK/model.tar.gz" -- *)
(cd "$WORK/output" && tar -czf "$WORK/output.tar.gz" -- *)
echo "train_ec2: wrote $WORK/model.tar.gz"

# 5. Optional upload, to the same key layout a training job uses: <prefix>/<job>/output/model.tar.gz.
if [[ -n "$UPLOAD" ]]; then
  DEST="${UPLOAD%/}/$TRAINING_JOB_NAME/output"
  aws s3 cp --only-show-errors "$WORK/model.tar.gz" "$DEST/model.tar.gz"
  aws s3 cp --only-show-errors "$WORK/output.tar.gz" "$DEST/output.tar.gz"
  echo "train_ec2: uploaded $DEST/model.tar.gz"
fi
