#!/usr/bin/env bash
# Multi-process / multi-node training with torchrun; the recipe is the same as for one process.
#   scripts/launch_torchrun.sh RECIPE.yaml OUT_DIR [--set k=v ...] [--stage NAME] [--resume]
# Environment: NPROC (processes per node, default: GPUs or 1), NNODES (1), NODE_RANK (0),
#              MASTER_ADDR (127.0.0.1), MASTER_PORT (29500).
set -euo pipefail
recipe=${1:?recipe}; out=${2:?out dir}; shift 2
nproc=${NPROC:-$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')}
nnodes=${NNODES:-1}
# the recipe's batch plan for this world size (engine.batch: global must split evenly): fail before any process starts
python -m shardsmith.trainer.launch plan "$recipe" --world $((nproc * nnodes)) "$@"
if [ "$nnodes" = 1 ]; then
  exec torchrun --standalone --nproc_per_node "$nproc" -m shardsmith.trainer "$recipe" --out "$out" "$@"
fi
exec torchrun --nnodes "$nnodes" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m shardsmith.trainer "$recipe" --out "$out" "$@"
