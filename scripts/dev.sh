#!/usr/bin/env bash
# `npm run dev`: installs what is missing, brings up the local stack, starts a worker per region,
# runs `lifeboat doctor`, applies the plan (schedules, archiver, monitor), takes a first full
# backup and prints the Web UI link, then keeps the workers running until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bootstrap.sh
source scripts/bootstrap.sh
state=${LIFEBOAT_STATE:-.lifeboat}
# The stack writes its own plan: examples/lifeboat.yaml with its ports and paths.
plan="$state/lifeboat.yaml"

lifeboat stack up
eval "$(lifeboat stack status --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));const t=s.parts.find(p=>p.name==="temporal");console.log(`export TEMPORAL_ADDRESS=${t.address}`)')"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping workers (in-flight activities get to finish)..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  echo "workers stopped; the stack keeps running: 'bin/lifeboat stack down' stops it."
}
trap stop INT TERM EXIT

port=$((9464 + ${LIFEBOAT_PORT_OFFSET:-0}))
for region in us-east-1 us-west-2; do
  lifeboat worker --region "$region" -f "$plan" --env-file "$state/secrets.env" \
    --metrics-address "127.0.0.1:$port" >"$state/logs/worker-$region.log" 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
for region in us-east-1 us-west-2; do
  for _ in $(seq 1 120); do
    grep -q "polling" "$state/logs/worker-$region.log" 2>/dev/null && break
    sleep 0.5
  done
  grep -q "polling" "$state/logs/worker-$region.log" || { cat "$state/logs/worker-$region.log"; exit 1; }
  echo "worker $region: $(grep polling "$state/logs/worker-$region.log")"
done

lifeboat doctor -f "$plan" || echo "doctor found problems (see above)"
echo
# The plan's schedules (backups, retention, drills), its WAL archiver and region health monitor;
# idempotent: a second `npm run dev` finds them all unchanged and running.
lifeboat apply -f "$plan" || echo "apply found problems (see above)"
echo
echo "first full backup of orders (the schedules take the next ones):"
lifeboat backup full --database orders -f "$plan" || echo "the first full backup failed (see above)"
echo
echo "Temporal Web UI: $(lifeboat stack status --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(s.parts.find(p=>p.name==="temporal").details.webUi)')   worker logs: $state/logs/worker-*.log"
echo "Workers are running. Ctrl-C to stop them."
wait "${pids[@]}"
