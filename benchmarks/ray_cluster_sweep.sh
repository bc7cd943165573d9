#!/usr/bin/env bash
# Sweep against a Ray cluster instead of a per-run local Ray: start a head node on 127.0.0.1
# (free port, 2 CPUs), run the smoke sweep on amazon-beauty-sample with --ray-address, then
# `ray stop` (also on error). Loopback only; for a real cluster start the head with your node's
# address and `ray start --address=<head>:<port>` on every worker node (see README).
#
#   benchmarks/ray_cluster_sweep.sh [extra run_recbole_faerec.py flags, e.g. --base]
#
# Environment: WORK (default: a new temp folder) holds the data, Ray's temp files and the
# results; DATA_PATH (default: $WORK/data) is the RecBole data_path (reuse one that already has
# the sample's LLM table to skip building it); SPACE (default: properties/tune/smoke.yaml).
# Note: `ray stop` stops every Ray process of this user on the machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-$(mktemp -d /tmp/faerec-cluster.XXXXXX)}"
DATA_PATH="${DATA_PATH:-$WORK/data}"
SPACE="${SPACE:-$REPO/properties/tune/smoke.yaml}"
PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$WORK" "$DATA_PATH"

ray start --head --node-ip-address=127.0.0.1 --port="$PORT" --num-cpus=2 \
    --include-dashboard=false --disable-usage-stats --temp-dir="$WORK/ray"
trap 'ray stop' EXIT
ray status --address="127.0.0.1:$PORT"

cd "$WORK"
python "$REPO/run_recbole_faerec.py" --model=SASRec --dataset=amazon-beauty-sample \
    --tune "$SPACE" --ray-address="127.0.0.1:$PORT" --storage-path="$WORK/ray_results" \
    --scheduler=asha --cpus-per-trial=1 --data_path="$DATA_PATH" --state=WARNING "$@"
