#!/usr/bin/env bash
# Run the GRPO job the cluster way: start a private single-node Ray cluster bound to
# 127.0.0.1, `ray job submit` launch/grpo.py to it, wait, print the job's result, and stop
# only that cluster (never `ray stop`, which would stop every Ray of this user).
#
#   bench/ray_job_submit.sh [extra key=value overrides for launch/grpo.py]
#
# Defaults to a 2-step run of configs/grpo_tiny.yaml into runs/grpo_job_submit.
# Every port is a free one: the dashboard agent's default (52365) is often held by another
# Ray on the same machine, and then the agent cannot serve the job server, which answers
# "No available agent to submit job" forever. Until the agent has registered (seconds on a
# loaded 2-core machine) that answer is normal: submissions are retried.
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=.venv/bin/ray
PY="$(pwd)/.venv/bin/python"  # the job's entrypoint runs the python on PATH unless named
# A private loopback cluster needs no token: without RAY_AUTH_MODE=disabled, Ray 2.60 starts one
# with token auth on and `ray job submit` from the same shell is refused.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 VLLM_HOST_IP=127.0.0.1 RAY_AUTH_MODE=disabled

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GCS_PORT=$(free_port); DASH_PORT=$(free_port); AGENT_PORT=$(free_port); SUBMISSION_ID="mathrl-grpo-$$"
TMP=$(mktemp -d /tmp/mathrl-ray-XXXXXX)
cluster_pids() {
  # Every process of this cluster has the private temp dir or GCS port on its command line.
  { pgrep -f "$TMP"; pgrep -f "gcs-address=127.0.0.1:$GCS_PORT"; pgrep -f "port=$GCS_PORT"; } 2>/dev/null | sort -u
}
cleanup() {
  # A job still running (the script interrupted) is stopped first: its driver is not part of
  # the cluster's processes and would outlive them.
  "$RAY" job stop --address "http://127.0.0.1:$DASH_PORT" "$SUBMISSION_ID" >/dev/null 2>&1 || true
  # As `ray stop` does, but for this cluster only: SIGTERM, then SIGKILL what is left
  # (gcs_server and raylet can outlive a SIGTERM by many seconds).
  local pids; pids=$(cluster_pids)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  for _ in $(seq 1 10); do [ -z "$(cluster_pids)" ] && break; sleep 1; done
  pids=$(cluster_pids); [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  sleep 1; rm -rf "$TMP"
  [ -z "$(cluster_pids)" ] && echo "private Ray cluster stopped" || echo "WARNING: left over: $(cluster_pids)"
}
trap cleanup EXIT

# 4 logical CPUs: the actors of configs/grpo_tiny.yaml ask for 2 + 1 + 1 (see that config).
"$RAY" start --head --node-ip-address 127.0.0.1 --port "$GCS_PORT" --dashboard-host 127.0.0.1 \
  --dashboard-port "$DASH_PORT" --dashboard-agent-listen-port "$AGENT_PORT" --num-cpus "${NUM_CPUS:-4}" --temp-dir "$TMP" --disable-usage-stats >/dev/null
echo "private Ray cluster: dashboard and job server on http://127.0.0.1:$DASH_PORT"

# The entrypoint runs wherever the job server starts it: go to this checkout first (paths in
# the config are relative to it), without uploading a working_dir (the runs/ it needs are ignored files).
JOB=$(printf '%q ' "$PY" launch/grpo.py --config configs/grpo_tiny.yaml run.run_dir=runs/grpo_job_submit run.steps=2 "$@")
# The job agent comes up a few seconds after the head: until then submissions are refused.
for attempt in $(seq 1 60); do
  if "$RAY" job submit --address "http://127.0.0.1:$DASH_PORT" --submission-id "$SUBMISSION_ID" -- bash -c "cd $(printf '%q' "$(pwd)") && $JOB" 2>"$TMP/submit.err"; then
    break
  fi
  grep -q "No available agent" "$TMP/submit.err" || { cat "$TMP/submit.err"; exit 1; }
  sleep 2
done
cat runs/grpo_job_submit/summary.json; echo
