#!/usr/bin/env bash
# Run the GRPO job the cluster way: start a private single-node Ray cluster bound to
# 127.0.0.1, `ray job submit` launch/grpo.py to it, wait, print the job's result, and stop
# only that cluster (never `ray stop`, which would stop every Ray of this user).
#
#   bench/ray_job_submit.sh [extra key=value overrides for launch/grpo.py]
#
# Defaults to a 2-step run of configs/grpo_tiny.yaml into runs/grpo_job_submit.
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=.venv/bin/ray
PY="$(pwd)/.venv/bin/python"  # the job's entrypoint runs the python on PATH unless named
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 VLLM_HOST_IP=127.0.0.1

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GCS_PORT=$(free_port); DASH_PORT=$(free_port)
TMP=$(mktemp -d /tmp/mathrl-ray-XXXXXX)
cleanup() {
  # Every process of this cluster has the private temp dir or GCS port on its command line.
  pkill -f "$TMP" 2>/dev/null || true
  pkill -f "gcs-address=127.0.0.1:$GCS_PORT" 2>/dev/null || true
  pkill -f "port=$GCS_PORT" 2>/dev/null || true
  sleep 2; rm -rf "$TMP"
}
trap cleanup EXIT

"$RAY" start --head --node-ip-address 127.0.0.1 --port "$GCS_PORT" --dashboard-host 127.0.0.1 \
  --dashboard-port "$DASH_PORT" --num-cpus "${NUM_CPUS:-2}" --temp-dir "$TMP" --disable-usage-stats >/dev/null
echo "private Ray cluster: dashboard and job server on http://127.0.0.1:$DASH_PORT"

# The entrypoint runs wherever the job server starts it: go to this checkout first (paths in
# the config are relative to it), without uploading a working_dir (the runs/ it needs are ignored files).
JOB=$(printf '%q ' "$PY" launch/grpo.py --config configs/grpo_tiny.yaml run.run_dir=runs/grpo_job_submit run.steps=2 "$@")
"$RAY" job submit --address "http://127.0.0.1:$DASH_PORT" -- bash -c "cd $(printf '%q' "$(pwd)") && $JOB"
cat runs/grpo_job_submit/summary.json
