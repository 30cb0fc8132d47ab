#!/usr/bin/env bash
# Runs the sharded study on Kubernetes: the Indexed Job, then, once every index
# has completed, the merge Job.   IMAGE=registry.example/brandsim:0.1.0 ./run.sh
set -euo pipefail
: "${IMAGE:?set IMAGE to an image with brandsim on PATH}"
here=$(cd "$(dirname "$0")" && pwd)
sed "s|IMAGE|$IMAGE|" "$here/shards-job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=24h job/brandsim-shards
sed "s|IMAGE|$IMAGE|" "$here/merge-job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=1h job/brandsim-merge
kubectl logs job/brandsim-merge
