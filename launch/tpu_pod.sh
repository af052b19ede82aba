#!/usr/bin/env bash
# Runs `scoder iterate` on a Cloud TPU VM slice (single- or multi-host).
#
#   bash launch/tpu_pod.sh --name NAME --zone ZONE --accelerator-type v4-32 --config CFG \
#        (--run-dir gs://BUCKET/runs/RUN | --bucket BUCKET [--run-name RUN]) \
#        [--version RUNTIME] [--repo GIT_URL_OR_LOCAL_PATH] [--ref BRANCH] [--project P] [--spot] \
#        [--workers N] [--log-dir DIR] [--skip-install] [--dry-run] [--] [KEY=VALUE overrides...]
#
# Steps: (1) reuse the slice if `tpu-vm describe` finds it, else `tpu-vm create` it; (2) install
# the project on every worker (git clone of --repo, or a tarball of a local checkout copied with
# `tpu-vm scp --worker=all`) into ~/scoder-venv with jax[tpu]; (3) run the same command on all
# workers with `tpu-vm ssh --worker=all`, each worker writing its output to
# ~/scoder-logs/worker-<id>.log; (4) gather the logs: each worker copies its log to
# RUN_DIR/logs/ (gsutil, for a gs:// run dir) and this machine fetches them into --log-dir
# (`tpu-vm scp --worker=i`, one per worker).
# --dry-run prints every command (one per line, after "+ ", shell-quoted) instead of running it.
#
# The run directory lives on GCS, so every host sees the same files: each worker mounts the
# bucket with gcsfuse at ~/gcs/BUCKET (installed in step 2) and `scoder iterate` gets the mounted
# path (~/gcs/BUCKET/runs/RUN): the pipeline writes through POSIX files and renames, which
# gcsfuse maps onto GCS objects. A run directory that is not on gs:// is used as it is (it must
# then be a filesystem every worker shares, e.g. Filestore NFS).
#
# Multi-host JAX on TPU needs no coordinator arguments: jax.distributed.initialize() with no
# arguments autodetects the slice's hosts from the TPU metadata. scoder, however, only calls
# it when SCODER_COORDINATOR is set (scoder_jax/parallel.py::maybe_initialize_distributed), so
# on a multi-host slice the workers get SCODER_COORDINATOR=<worker 0 internal IP>:8476,
# SCODER_NUM_PROCESSES=<hosts> and SCODER_PROCESS_ID=<agent-worker-number from the metadata
# server>, which is exactly what autodetection would find. A single-host slice gets none.
set -euo pipefail

die() { echo "tpu_pod.sh: $*" >&2; echo "run 'bash launch/tpu_pod.sh --help' for usage" >&2; exit 2; }
usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

NAME="" ZONE="" ACCEL="" VERSION="" CONFIG="" RUN_DIR="" BUCKET="" RUN_NAME="" PROJECT=""
REPO="" REF="" SPOT=0 DRY=0 WORKERS="" LOG_DIR="" SKIP_INSTALL=0 PORT=8476
OVERRIDES=()
need() { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --name) need "$@"; NAME=$2; shift 2 ;;
    --zone) need "$@"; ZONE=$2; shift 2 ;;
    --accelerator-type) need "$@"; ACCEL=$2; shift 2 ;;
    --version) need "$@"; VERSION=$2; shift 2 ;;
    --config) need "$@"; CONFIG=$2; shift 2 ;;
    --run-dir) need "$@"; RUN_DIR=$2; shift 2 ;;
    --bucket) need "$@"; BUCKET=${2#gs://}; BUCKET=${BUCKET%/}; shift 2 ;;
    --run-name) need "$@"; RUN_NAME=$2; shift 2 ;;
    --project) need "$@"; PROJECT=$2; shift 2 ;;
    --repo) need "$@"; REPO=$2; shift 2 ;;
    --ref) need "$@"; REF=$2; shift 2 ;;
    --workers) need "$@"; WORKERS=$2; shift 2 ;;
    --log-dir) need "$@"; LOG_DIR=$2; shift 2 ;;
    --port) need "$@"; PORT=$2; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --skip-install) SKIP_INSTALL=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; OVERRIDES+=("$@"); break ;;
    --*) die "unknown option $1" ;;
    *=*) OVERRIDES+=("$1"); shift ;;
    *) die "unexpected argument '$1' (overrides are KEY=VALUE)" ;;
  esac
done

[ -n "$NAME" ] || die "--name is required (the TPU VM's name)"
[ -n "$ZONE" ] || die "--zone is required (e.g. us-central2-b)"
[ -n "$ACCEL" ] || die "--accelerator-type is required (e.g. v4-32, v5litepod-64)"
[ -n "$CONFIG" ] || die "--config is required (a preset in configs/ or a YAML path inside the repository)"
if [ -z "$RUN_DIR" ]; then
  [ -n "$BUCKET" ] || die "--run-dir gs://BUCKET/runs/NAME or --bucket BUCKET is required"
  RUN_DIR="gs://$BUCKET/runs/${RUN_NAME:-$NAME}"
fi
RUN_DIR=${RUN_DIR%/}

# Hosts in the slice. Names count TensorCores for v2/v3/v4/v5p (8 per host) and chips for
# v5e/v6e (4 per host in multi-host slices, up to 8 on a single host).
hosts_of() {
  local kind=${1%-*} n=${1##*-}
  case "$n" in ''|*[!0-9]*) return 1 ;; esac
  case "$kind" in
    v2|v3|v4|v5p) echo $(( n <= 8 ? 1 : n / 8 )) ;;
    v5litepod|v5e|v6e) echo $(( n <= 8 ? 1 : n / 4 )) ;;
    *) return 1 ;;
  esac
}
if [ -z "$WORKERS" ]; then
  WORKERS=$(hosts_of "$ACCEL") || die "--accelerator-type $ACCEL: unknown form (expected e.g. v4-32, v5p-64, v5litepod-16, v6e-8); pass --workers N"
fi
case "$WORKERS" in ''|*[!0-9]*|0) die "--workers must be a positive integer, got '$WORKERS'" ;; esac
case "$ACCEL" in
  v5litepod*|v5e*) VERSION=${VERSION:-v2-alpha-tpuv5-lite} ;;
  v6e*) VERSION=${VERSION:-v2-alpha-tpuv6e} ;;
  v5p*) VERSION=${VERSION:-v2-alpha-tpuv5} ;;
  *) VERSION=${VERSION:-tpu-ubuntu2204-base} ;;
esac
LOG_DIR=${LOG_DIR:-logs/$NAME}
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
LOCAL_REPO=0
if [ -d "$REPO" ]; then LOCAL_REPO=1; REPO=$(cd "$REPO" && pwd); fi

q() { printf '%q' "$1"; }
run() {  # prints (dry run) or runs one command
  if [ "$DRY" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}
G=(gcloud compute tpus tpu-vm)
LOC=(--zone "$ZONE")
[ -n "$PROJECT" ] && LOC+=(--project "$PROJECT")

[ "$DRY" = 1 ] || command -v gcloud >/dev/null || die "gcloud is not on PATH (install the Google Cloud SDK, or use --dry-run)"

# 1. create or reuse the slice
CREATE=("${G[@]}" create "$NAME" "${LOC[@]}" --accelerator-type "$ACCEL" --version "$VERSION")
[ "$SPOT" = 1 ] && CREATE+=(--spot)
if [ "$DRY" = 1 ]; then
  run "${G[@]}" describe "$NAME" "${LOC[@]}"
  echo "# when describe fails (no such slice):"
  run "${CREATE[@]}"
elif "${G[@]}" describe "$NAME" "${LOC[@]}" >/dev/null 2>&1; then
  echo "reusing TPU VM $NAME in $ZONE" >&2
else
  echo "creating TPU VM $NAME ($ACCEL, $VERSION) in $ZONE" >&2
  run "${CREATE[@]}"
fi

# 2. install on every worker
SSH=("${G[@]}" ssh "$NAME" "${LOC[@]}" --worker=all)
PIP_INSTALL="python3 -m venv ~/scoder-venv && ~/scoder-venv/bin/pip install -q -U pip && ~/scoder-venv/bin/pip install -q -e ~/scoder-jax 'jax[tpu]'"
GCSFUSE_INSTALL='command -v gcsfuse >/dev/null || { echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null && sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse; }'
case "$RUN_DIR" in gs://*) PIP_INSTALL="$GCSFUSE_INSTALL && $PIP_INSTALL" ;; esac
if [ "$SKIP_INSTALL" = 0 ]; then
  if [ "$LOCAL_REPO" = 1 ]; then
    TARBALL=${TMPDIR:-/tmp}/scoder-jax-$NAME.tar.gz
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
      run git -C "$REPO" archive --format=tar.gz -o "$TARBALL" "${REF:-HEAD}"
    else
      run tar -C "$REPO" --exclude=.venv --exclude=runs --exclude=.git -czf "$TARBALL" .
    fi
    run "${G[@]}" scp "$TARBALL" "$NAME:scoder-jax.tar.gz" "${LOC[@]}" --worker=all
    run "${SSH[@]}" --command "set -e; rm -rf ~/scoder-jax && mkdir -p ~/scoder-jax && tar -xzf ~/scoder-jax.tar.gz -C ~/scoder-jax && $PIP_INSTALL"
  else
    CHECKOUT="if [ -d ~/scoder-jax/.git ]; then git -C ~/scoder-jax fetch -q origin; else git clone -q $(q "$REPO") ~/scoder-jax; fi"
    [ -n "$REF" ] && CHECKOUT+=" && git -C ~/scoder-jax checkout -q $(q "$REF")" || CHECKOUT+=" && git -C ~/scoder-jax pull -q --ff-only || true"
    run "${SSH[@]}" --command "set -e; $CHECKOUT; $PIP_INSTALL"
  fi
fi

# 3. the same command on all workers (a gs:// run directory through each worker's gcsfuse mount)
MOUNT="" WORKER_RUN_DIR=$(q "$RUN_DIR")
case "$RUN_DIR" in
  gs://*)
    B=${RUN_DIR#gs://}; B=${B%%/*}; SUB=${RUN_DIR#gs://$B}
    MOUNT="mkdir -p ~/gcs/$B && { mountpoint -q ~/gcs/$B || gcsfuse -o rw --implicit-dirs $(q "$B") ~/gcs/$B; }; "
    WORKER_RUN_DIR="~/gcs/$B$(q "$SUB")" ;;
esac
SCODER="~/scoder-venv/bin/scoder iterate --config $(q "$CONFIG") --run-dir $WORKER_RUN_DIR --no-progress"
for o in "${OVERRIDES[@]+"${OVERRIDES[@]}"}"; do SCODER+=" $(q "$o")"; done
WID='WID=$(curl -s -H Metadata-Flavor:Google http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number || echo 0)'
ENVS=""
if [ "$WORKERS" -gt 1 ]; then
  if [ "$DRY" = 1 ]; then
    run "${G[@]}" describe "$NAME" "${LOC[@]}" "--format=value(networkEndpoints[0].ipAddress)"
    COORD_IP='WORKER0_IP'
  else
    COORD_IP=$("${G[@]}" describe "$NAME" "${LOC[@]}" "--format=value(networkEndpoints[0].ipAddress)")
    [ -n "$COORD_IP" ] || die "could not read worker 0's IP address of $NAME"
  fi
  ENVS="export SCODER_COORDINATOR=$COORD_IP:$PORT SCODER_NUM_PROCESSES=$WORKERS SCODER_PROCESS_ID=\$WID; "
fi
PUSH=""
case "$RUN_DIR" in gs://*) PUSH="gsutil -q cp ~/scoder-logs/worker-\$WID.log $(q "$RUN_DIR")/logs/worker-\$WID.log || true; " ;; esac
REMOTE="$WID; mkdir -p ~/scoder-logs; ${MOUNT}cd ~/scoder-jax; ${ENVS}$SCODER > ~/scoder-logs/worker-\$WID.log 2>&1; rc=\$?; ${PUSH}exit \$rc"
status=0
run "${SSH[@]}" --command "$REMOTE" || status=$?

# 4. gather the logs
run mkdir -p "$LOG_DIR"
for ((i = 0; i < WORKERS; i++)); do
  run "${G[@]}" scp "$NAME:scoder-logs/worker-$i.log" "$LOG_DIR/worker-$i.log" "${LOC[@]}" "--worker=$i" || true
done
if [ "$DRY" = 0 ]; then
  echo "logs: $LOG_DIR (worker-0.log .. worker-$((WORKERS - 1)).log); run dir: $RUN_DIR" >&2
  [ "$status" = 0 ] || echo "tpu_pod.sh: the run failed on at least one worker (exit $status); see the logs" >&2
  echo "the slice keeps running: delete it with: ${G[*]} delete $NAME ${LOC[*]}" >&2
fi
exit "$status"
