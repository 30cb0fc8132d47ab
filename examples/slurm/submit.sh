#!/usr/bin/env bash
# Submits a brandsim study to Slurm as a job array of N shards plus a merge job
# that runs when all of them have succeeded.
#
#   examples/slurm/submit.sh N SCENARIO STUDY_DIR [brandsim run options...]
#
# e.g. examples/slurm/submit.sh 16 scenarios/knowledge_platform.toml runs/big --replications 1600
# Set BRANDSIM to the binary's path if it is not on PATH on the compute nodes, and
# SBATCH_OPTIONS for site options (partition, account, time), e.g. "-p long -t 4:00:00".
# Prints the two job ids; the merged outputs appear in STUDY_DIR/merged.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '4,9p' "$0" >&2
    exit 2
fi
shards=$1 scenario=$2 study=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$study/logs"
study=$(cd "$study" && pwd)
scenario=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")
export SHARDS=$shards SCENARIO=$scenario STUDY=$study BRANDSIM_ARGS="$*"
export BRANDSIM=${BRANDSIM:-brandsim}
# shellcheck disable=SC2086 # SBATCH_OPTIONS is a list of options
array=$(sbatch --parsable ${SBATCH_OPTIONS:-} --array="0-$((shards - 1))" \
    --output="$study/logs/shard-%a.out" --export=ALL "$here/shard.sbatch")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_OPTIONS:-} --dependency="afterok:$array" \
    --output="$study/logs/merge.out" --export=ALL "$here/merge.sbatch")
merge=${merge%%;*}
echo "array job $array ($shards shards), merge job $merge; results in $study/merged"
