#!/usr/bin/env bash
# Training through the deepspeed launcher (one node, or several with a hostfile); same recipe as one process.
#   scripts/launch_deepspeed.sh RECIPE.yaml OUT_DIR [--set k=v ...] [--stage NAME] [--resume]
# Environment: NGPUS (per node, default: all visible / 1 on CPU), HOSTFILE (multi-node: "host slots=N" lines),
#              MASTER_PORT (29500). On CPU hosts DeepSpeed uses gloo; NGPUS then counts processes.
# The batch plan for the world size (the hostfile's slots summed) is checked first (shardsmith.trainer.launch plan).
set -euo pipefail
recipe=${1:?recipe}; out=${2:?out dir}; shift 2
n=${NGPUS:-$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')}
args=(--master_port "${MASTER_PORT:-29500}")
if [ -n "${HOSTFILE:-}" ]; then
  args+=(--hostfile "$HOSTFILE")
  python -m shardsmith.trainer.launch plan "$recipe" --hostfile "$HOSTFILE" "$@"
else
  args+=(--num_gpus "$n")
  python -m shardsmith.trainer.launch plan "$recipe" --world "$n" "$@"
fi
exec deepspeed "${args[@]}" --module shardsmith.trainer "$recipe" --out "$out" "$@"
