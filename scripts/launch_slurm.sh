#!/usr/bin/env bash
# Slurm template: one task per node, torchrun starts the per-GPU processes. Submit with
#   sbatch --nodes=2 --gpus-per-node=8 scripts/launch_slurm.sh RECIPE.yaml OUT_DIR [--set k=v ...] [--resume]
# Requeue-safe: re-submitting the same command with --resume continues from the last checkpoint.
# A script with the cluster's values filled in: python -m shardsmith.trainer.launch slurm RECIPE --out DIR --nodes N
#   --gpus-per-node G [--partition P --time T] --write job.sbatch
#SBATCH --job-name=shardsmith-train
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --exclusive
#SBATCH --output=%x-%j.out
set -euo pipefail
recipe=${1:?recipe}; out=${2:?out dir}; shift 2
gpus=${SLURM_GPUS_ON_NODE:-${GPUS_PER_NODE:-8}}
python -m shardsmith.trainer.launch plan "$recipe" --world $((SLURM_JOB_NUM_NODES * gpus)) "$@"
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
srun --kill-on-bad-exit=1 torchrun \
  --nnodes "$SLURM_JOB_NUM_NODES" --nproc_per_node "$gpus" \
  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$head:${MASTER_PORT:-29500}" \
  -m shardsmith.trainer "$recipe" --out "$out" "$@"
