#!/usr/bin/env bash
# Incremental-backup benchmark (not a test): what an incremental costs against what changed, at two
# database sizes. For each size it takes a full backup, then incrementals after inserting 1 000,
# 10 000 and 100 000 rows; each incremental's stored bytes, WAL segments and duration come from its
# own result (`lifeboat backup incremental --json`), Kubernetes objects included (namespace shop of
# the example plan: nothing changes there, so no object is uploaded).
#
#   LIFEBOAT_STATE=/tmp/stack900 LIFEBOAT_PORT_OFFSET=900 bash bench/incremental.sh [pad-rows]
#
# Needs a running local stack (same LIFEBOAT_STATE), psql, jq. The larger size adds a table of
# pad-rows (default 2 000 000) rows of md5 text to `orders`. Writes bench/results/incremental-<time>.md;
# drops its tables, stops the archiver and deletes its storage prefix afterwards.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$here"
pad_rows=${1:-2000000}
state=${LIFEBOAT_STATE:?set LIFEBOAT_STATE to the stack folder (lifeboat stack up)}
secrets=$state/secrets.env
for b in psql jq; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a==22&&b>=19)?0:1)' 2>/dev/null; then
  for n in "$here/.lifeboat/node/bin" "$state/node/bin"; do [[ -x $n/node ]] && PATH=$n:$PATH && break; done
fi
export PATH
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-$(node --disable-warning=ExperimentalWarning -e "import('./src/stack/layout.ts').then((m) => console.log(m.layoutFromEnv().temporal.address))")}

work=$(mktemp -d /tmp/lifeboat-bench-inc.XXXXXX)
plan=$work/plan.yaml
prefix=bench-incremental-$(date -u +%Y%m%dT%H%M%SZ)
node -e '
  const Y=require("yaml"),fs=require("fs");const p=Y.parse(fs.readFileSync(process.argv[1],"utf8"));
  p.storage.primary.url=`s3://${new URL(p.storage.primary.url).host}/${process.argv[3]}`;
  fs.writeFileSync(process.argv[2],Y.stringify(p));' "$state/lifeboat.yaml" "$plan" "$prefix"
read -r pgport < <(node -e 'const Y=require("yaml");const p=Y.parse(require("fs").readFileSync(process.argv[1],"utf8"));
  console.log(p.regions[p.databases.orders.primaryRegion].postgres.port)' "$plan")
set -a; . "$secrets"; set +a
sql() { PGPASSWORD=$LIFEBOAT_PG_PASSWORD psql -h 127.0.0.1 -p "$pgport" -U lifeboat -d orders -qAtc "$1"; }
lb() { bin/lifeboat "$@" -f "$plan"; }

worker=
cleanup() {
  local code=$?
  lb archiver stop --database orders >/dev/null 2>&1 || true
  [[ -n $worker ]] && { kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; }
  sql "drop table if exists bench_pad; drop table if exists bench_change" || true
  node bench/s3.ts rm "$plan" "$secrets" "$prefix/" >/dev/null || true
  rm -rf "$work"
  exit $code
}
trap cleanup EXIT

LIFEBOAT_SPOOL=$work/spool bin/lifeboat worker --region us-east-1 -f "$plan" --env-file "$secrets" >"$work/worker.log" 2>&1 &
worker=$!
for _ in $(seq 120); do grep -q polling "$work/worker.log" && break; sleep 0.5; done
grep -q polling "$work/worker.log" || { cat "$work/worker.log"; exit 1; }
lb archiver start --database orders >/dev/null

rows=()
sql "drop table if exists bench_pad; drop table if exists bench_change; create table bench_change (id bigserial primary key, note text)"
for pad in 0 "$pad_rows"; do
  if ((pad > 0)); then
    echo "== padding orders with $pad rows"
    sql "create table bench_pad as select g as id, md5(g::text) || md5((g + 1)::text) as note from generate_series(1, $pad) g"
    sql "checkpoint" 2>/dev/null || true
  fi
  db_mb=$(sql "select round(pg_database_size(current_database()) / 1e6)")
  echo "== database orders: $db_mb MB; full backup"
  full=$(lb backup full --database orders --json)
  rows+=("| $db_mb | full | — | — | $(jq -r '.storedBytes' <<<"$full") | $(jq -r '.durationMs' <<<"$full") | $(jq -r '.kubernetes.newObjects // "—"' <<<"$full") |")
  for change in 1000 10000 100000; do
    sql "insert into bench_change (note) select md5(g::text) || md5(random()::text) from generate_series(1, $change) g"
    inc=$(lb backup incremental --database orders --json)
    echo "   $change rows: $(jq -c '{segments, storedBytes, durationMs, k8s: .kubernetes.newObjects}' <<<"$inc")"
    rows+=("| $db_mb | incremental | $change | $(jq -r '.segments' <<<"$inc") | $(jq -r '.storedBytes' <<<"$inc") | $(jq -r '.durationMs' <<<"$inc") | $(jq -r '.kubernetes.newObjects // "—"' <<<"$inc") |")
  done
done

mkdir -p bench/results
out=bench/results/incremental-$(date -u +%Y-%m-%dT%H%MZ).md
{
  echo "# Incremental backups vs what changed ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(uptime | sed 's/.*load average: //'))"
  echo
  echo "Each incremental follows the previous backup; rows inserted into bench_change (about 100 bytes of text each)."
  echo "Stored bytes and duration are the workflow's own figures (WAL segments zstd + age; Kubernetes objects uploaded)."
  echo
  echo "| database MB | backup | rows changed | WAL segments | stored bytes | duration ms | k8s objects uploaded |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
echo "written to $out"
