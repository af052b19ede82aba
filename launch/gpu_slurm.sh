#!/usr/bin/env bash
# Runs `scoder iterate` on GPUs: multi-node through SLURM, or on one machine without it.
#
#   bash launch/gpu_slurm.sh --config CFG --run-dir DIR [--nodes N] [--gpus-per-node G]
#        [--per-gpu] [--partition P] [--account A] [--time HH:MM:SS] [--cpus-per-task C]
#        [--job-name NAME] [--port PORT] [--venv DIR] [--log-dir DIR] [--sbatch-arg ARG]...
#        [--local] [--dry-run] [--] [KEY=VALUE overrides...]
#
# SLURM (default): writes an sbatch script to LOG_DIR/NAME.sbatch and submits it with `sbatch`.
# Inside the job, `srun` starts one process per node (seeing the node's G GPUs), or with
# --per-gpu one process per GPU (CUDA_VISIBLE_DEVICES=$SLURM_LOCALID). Every process gets
#   SCODER_COORDINATOR=<first node of the job>:PORT, SCODER_NUM_PROCESSES=$SLURM_NTASKS,
#   SCODER_PROCESS_ID=$SLURM_PROCID
# which scoder hands to jax.distributed.initialize (scoder_jax/parallel.py::
# maybe_initialize_distributed); each task writes LOG_DIR/NAME-<job id>-<task>.log.
# --local: one process on this machine seeing all its GPUs (no SLURM, no distributed start-up).
# --dry-run prints the generated sbatch script and the submit command (or the local command)
# instead of writing or running anything.
# The run directory must be on a file system every node sees (checkpoints are written by all
# processes together).
set -euo pipefail

die() { echo "gpu_slurm.sh: $*" >&2; echo "run 'bash launch/gpu_slurm.sh --help' for usage" >&2; exit 2; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG="" RUN_DIR="" NODES=1 GPUS=8 PER_GPU=0 PARTITION="" ACCOUNT="" TIME="24:00:00" CPUS=""
JOB_NAME="scoder" PORT=12355 VENV="" LOG_DIR="" LOCAL=0 DRY=0
SBATCH_ARGS=() OVERRIDES=()
need() { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || die "$1 needs a value"; }
posint() { case "$2" in ''|*[!0-9]*|0) die "$1 must be a positive integer, got '$2'" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
    --config) need "$@"; CONFIG=$2; shift 2 ;;
    --run-dir) need "$@"; RUN_DIR=$2; shift 2 ;;
    --nodes) need "$@"; posint "$1" "$2"; NODES=$2; shift 2 ;;
    --gpus-per-node) need "$@"; posint "$1" "$2"; GPUS=$2; shift 2 ;;
    --per-gpu) PER_GPU=1; shift ;;
    --partition) need "$@"; PARTITION=$2; shift 2 ;;
    --account) need "$@"; ACCOUNT=$2; shift 2 ;;
    --time) need "$@"; TIME=$2; shift 2 ;;
    --cpus-per-task) need "$@"; posint "$1" "$2"; CPUS=$2; shift 2 ;;
    --job-name) need "$@"; JOB_NAME=$2; shift 2 ;;
    --port) need "$@"; posint "$1" "$2"; PORT=$2; shift 2 ;;
    --venv) need "$@"; VENV=$2; shift 2 ;;
    --log-dir) need "$@"; LOG_DIR=$2; shift 2 ;;
    --sbatch-arg) [ $# -ge 2 ] || die "--sbatch-arg needs a value"; SBATCH_ARGS+=("$2"); shift 2 ;;
    --local) LOCAL=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; OVERRIDES+=("$@"); break ;;
    --*) die "unknown option $1" ;;
    *=*) OVERRIDES+=("$1"); shift ;;
    *) die "unexpected argument '$1' (overrides are KEY=VALUE)" ;;
  esac
done
[ -n "$CONFIG" ] || die "--config is required (a preset in configs/ or a YAML path)"
[ -n "$RUN_DIR" ] || die "--run-dir is required (on a file system all nodes share)"
LOG_DIR=${LOG_DIR:-$ROOT/logs}
if [ -z "$VENV" ] && [ -x "$ROOT/.venv/bin/scoder" ]; then VENV=$ROOT/.venv; fi
SCODER=${VENV:+$VENV/bin/}scoder

CMD=$(printf '%q ' "$SCODER" iterate --config "$CONFIG" --run-dir "$RUN_DIR" --no-progress \
      "${OVERRIDES[@]+"${OVERRIDES[@]}"}")
CMD=${CMD% }

if [ "$LOCAL" = 1 ]; then
  # one process, all local GPUs; no SCODER_* variables so no distributed start-up
  LOCAL_CMD="cd $(printf %q "$ROOT") && env -u SCODER_COORDINATOR -u SCODER_NUM_PROCESSES -u SCODER_PROCESS_ID $CMD"
  if [ "$DRY" = 1 ]; then echo "+ $LOCAL_CMD"; exit 0; fi
  exec bash -c "$LOCAL_CMD"
fi

if [ "$PER_GPU" = 1 ]; then TASKS=$GPUS; else TASKS=1; fi
SCRIPT_PATH=$LOG_DIR/$JOB_NAME.sbatch
script() {
  echo "#!/usr/bin/env bash"
  echo "#SBATCH --job-name=$JOB_NAME"
  echo "#SBATCH --nodes=$NODES"
  echo "#SBATCH --ntasks-per-node=$TASKS"
  echo "#SBATCH --gpus-per-node=$GPUS"
  [ -n "$CPUS" ] && echo "#SBATCH --cpus-per-task=$CPUS"
  echo "#SBATCH --time=$TIME"
  [ -n "$PARTITION" ] && echo "#SBATCH --partition=$PARTITION"
  [ -n "$ACCOUNT" ] && echo "#SBATCH --account=$ACCOUNT"
  echo "#SBATCH --output=$LOG_DIR/%x-%j.out"
  for a in "${SBATCH_ARGS[@]+"${SBATCH_ARGS[@]}"}"; do echo "#SBATCH $a"; done
  echo "set -euo pipefail"
  echo "cd $(printf %q "$ROOT")"
  echo "# jax.distributed.initialize through scoder: coordinator on the job's first node"
  echo 'export SCODER_COORDINATOR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):'"$PORT"'"'
  echo 'export SCODER_NUM_PROCESSES=$SLURM_NTASKS'
  echo "unset XLA_FLAGS JAX_PLATFORMS"
  local per_task='export SCODER_PROCESS_ID=$SLURM_PROCID'
  [ "$PER_GPU" = 1 ] && per_task+='; export CUDA_VISIBLE_DEVICES=$SLURM_LOCALID'
  echo "srun --kill-on-bad-exit=1 --output=$(printf %q "$LOG_DIR")/%x-%j-%t.log bash -c $(printf %q "$per_task; exec $CMD")"
}

SUBMIT=(sbatch "$SCRIPT_PATH")
if [ "$DRY" = 1 ]; then
  echo "# sbatch script ($SCRIPT_PATH):"
  script
  echo "# submit:"
  printf '+'; printf ' %q' "${SUBMIT[@]}"; printf '\n'
  exit 0
fi
command -v sbatch >/dev/null || die "sbatch is not on PATH (not a SLURM login node?); use --local for one machine"
mkdir -p "$LOG_DIR"
script > "$SCRIPT_PATH"
"${SUBMIT[@]}"
