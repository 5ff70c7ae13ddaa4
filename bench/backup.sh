#!/usr/bin/env bash
# Full-backup benchmark (not a test): Lifeboat vs pgBackRest vs the pg_basebackup | zstd bound,
# in one run, on the same database, the same S3 server and the same zstd level (3).
#
#   LIFEBOAT_STATE=/tmp/stack900 LIFEBOAT_PORT_OFFSET=900 bash bench/backup.sh [pgbench scale] [--keep]
#
# Needs: a running local stack (`lifeboat stack up` with the same LIFEBOAT_STATE), root (pgBackRest
# must run as the OS user owning the data directory, postgres), pgbench/psql (Debian
# postgresql-client), pgbackrest (Debian 2.45), zstd, jq, bc.
# It builds the database `bench` with ../shared/bench/dataset.sh (pgbench scale 60 by default, a
# smaller scale for a quick run, + 3M md5 rows),
# then runs the three backups back to back:
#   1. Lifeboat: `lifeboat backup full --database bench` through real workers (us-east-1, us-west-2),
#      stored bytes from the manifest (`lifeboat backups list --json`);
#   2. `pgbackrest backup --type=full` to an S3 repo on the same SeaweedFS (zstd 3, process-max 2,
#      aes-256-cbc), stored bytes by listing the repo path;
#   3. the bound: `pg_basebackup -Ft -Xf -c fast -D - | zstd -3 -T2` (the compressed stream is only
#      counted, not stored).
# Prints one table and writes it to bench/results/<date>.md. Cleans up afterwards (drops `bench`,
# deletes the pgBackRest repo path and bench's Lifeboat backups) unless --keep.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$here"
. bench/setup.sh "$@"

work=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)
chmod 755 "$work"
plan=$work/plan.yaml
node bench/s3.ts plan "$stack_plan" "$plan" "$db"

# The primary (us-east-1 in the stack): port from the plan, data directory and socket from the stack.
read -r region pgport < <(node -e '
  const Y=require("yaml");const p=Y.parse(require("fs").readFileSync(process.argv[1],"utf8"));
  const r=p.databases[process.argv[2]].primaryRegion;console.log(r, p.regions[r].postgres.port)' "$plan" "$db")
pgdata=$state/postgres/$region
pgsock=$state/run/pg-$region
su_conn="host=$pgsock port=$pgport user=postgres"
bucket_prefix=$(node -e '
  const Y=require("yaml");const u=new URL(Y.parse(require("fs").readFileSync(process.argv[1],"utf8")).storage.primary.url);
  console.log(u.pathname.replace(/^\/+|\/+$/g,""))' "$plan")
set -a; . "$secrets"; set +a

workers=()
cleanup() {
  local code=$?
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((keep == 0)); then
    echo "cleaning up: dropping $db, deleting the pgBackRest repo path and $db's Lifeboat backups"
    psql "$su_conn dbname=postgres" -qc "drop database if exists $db" || true
    node bench/s3.ts rm "$plan" "$secrets" "pgbackrest-bench/" || true
    node bench/s3.ts rm "$plan" "$secrets" "$bucket_prefix/databases/$db/" || true
  fi
  rm -rf "$work"
  exit $code
}
trap cleanup EXIT

now() { date +%s.%N; }
load() { uptime | sed 's/.*load average: //'; }
mb() { echo "scale=1; $1 / 1000000" | bc; }

# ---------------------------------------------------------------------------------------------
echo "== dataset (pgbench scale $scale + 3M md5 rows)"
if ! psql "$su_conn dbname=postgres" -Atc "select 1 from pg_database where datname='$db'" | grep -q 1; then
  psql "$su_conn dbname=postgres" -qc "create database $db owner lifeboat"
fi
bash "$dataset" "$su_conn dbname=$db" "$scale"
# Settle before timing: without this, autovacuum of the freshly loaded tables sets hint bits during
# the first measurement (with wal_log_hints=on that is a full-page image per page in WAL, which the
# backups then carry), so whichever tool runs first pays for it.
psql "$su_conn dbname=$db" -qc "vacuum (analyze)"
psql "$su_conn dbname=postgres" -qc "checkpoint"
# ... and let the stack's streaming replica finish replaying the load (it shares the 2 cores and
# the disk), and the page cache write its dirty pages, before each measurement.
settle() {
  for _ in $(seq 600); do
    behind=$(psql "$su_conn dbname=postgres" -Atc \
      "select count(*) from pg_stat_replication where replay_lsn is distinct from pg_current_wal_lsn()")
    [[ $behind == 0 ]] && break
    sleep 0.5
  done
  sync
}
settle
db_bytes=$(psql "$su_conn dbname=$db" -Atc "select pg_database_size(current_database())")
cluster_bytes=$(psql "$su_conn dbname=postgres" -Atc "select sum(pg_database_size(datname)) from pg_database")

# ---------------------------------------------------------------------------------------------
echo "== workers"
for r in $(node -e 'const Y=require("yaml");console.log(Object.keys(Y.parse(require("fs").readFileSync(process.argv[1],"utf8")).regions).join(" "))' "$plan"); do
  bin/lifeboat worker --region "$r" -f "$plan" --env-file "$secrets" >"$work/worker-$r.log" 2>&1 &
  workers+=($!)
done
for r in $(node -e 'const Y=require("yaml");console.log(Object.keys(Y.parse(require("fs").readFileSync(process.argv[1],"utf8")).regions).join(" "))' "$plan"); do
  for _ in $(seq 120); do grep -q 'polling' "$work/worker-$r.log" && break; sleep 0.5; done
  grep -q 'polling' "$work/worker-$r.log" || { cat "$work/worker-$r.log"; exit 1; }
done

# pgBackRest: its repository as bench/restore.sh configures it; the stanza is created before timing.
. bench/pgbackrest-repo.sh
pgbackrest_repo pgbackrest-bench

# ---------------------------------------------------------------------------------------------
settle
echo "== 1/3 Lifeboat full backup"
load_lb=$(load)
t0=$(now)
bin/lifeboat backup full --database "$db" -f "$plan" --json >"$work/lifeboat-backup.json"
t1=$(now)
lb_wall=$(echo "$t1 - $t0" | bc)
bin/lifeboat backups list --database "$db" -f "$plan" --env-file "$secrets" --json >"$work/lifeboat-list.json"

settle
echo "== 2/3 pgbackrest backup --type=full"
load_pgbr=$(load)
t0=$(now)
pgbackrest_ backup --type=full
t1=$(now)
pgbr_wall=$(echo "$t1 - $t0" | bc)
pgbr_du=$(node bench/s3.ts du "$plan" "$secrets" "pgbackrest-bench/$run_id/backup/")
pgbr_all=$(node bench/s3.ts du "$plan" "$secrets" "pgbackrest-bench/$run_id/")

settle
echo "== 3/3 bound: pg_basebackup -Ft -Xf -c fast -D - | zstd -3 -T2"
load_bound=$(load)
t0=$(now)
bound_bytes=$(pg_basebackup -h "$pgsock" -p "$pgport" -U postgres -Ft -Xf -c fast -D - | zstd -3 -T2 -c | wc -c)
t1=$(now)
bound_wall=$(echo "$t1 - $t0" | bc)

# ---------------------------------------------------------------------------------------------
# Lifeboat figures from its manifest (the catalog).
lb=$(jq -c '.backups | map(select(.kind == "full")) | last' "$work/lifeboat-list.json")
lb_id=$(jq -r .id <<<"$lb")
lb_stored=$(jq -r .storedBytes <<<"$lb")
lb_raw=$(jq -r .rawBytes <<<"$lb")
lb_manifest=$(node bench/s3.ts cat "$plan" "$secrets" "$bucket_prefix/databases/$db/manifests/$lb_id.json")
lb_timings=$(jq -c '.timings | {checkpointMs, streamMs, verifyMs, totalMs, attempts}' <<<"$lb_manifest")
lb_verify=$(jq -r '.verification.method' <<<"$lb_manifest")
lb_stream_s=$(jq -r '.timings.streamMs / 1000' <<<"$lb_manifest")
pgbr_stored=$(jq -r .bytes <<<"$pgbr_du")
pgbr_stored_all=$(jq -r .bytes <<<"$pgbr_all")
mbps() { echo "scale=1; $cluster_bytes / 1000000 / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

date_tag=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p bench/results
out=bench/results/$date_tag.md
{
  echo "# Full backup benchmark, $date_tag"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); PostgreSQL $(psql "$su_conn dbname=postgres" -Atc 'show server_version');"
  echo "pgBackRest $(pgbackrest version | awk '{print $2}'); zstd $(zstd -V | grep -o 'v[0-9.]*'); Node $(node -v)."
  echo "Database \`$db\` (dataset.sh: pgbench scale $scale + 3M md5 rows): $(mb "$db_bytes") MB;"
  echo "the whole cluster every tool copies: $(mb "$cluster_bytes") MB (MB/s below are of this, 1 MB = 10^6 B)."
  echo "Storage: the stack's SeaweedFS over HTTPS (loopback), same bucket. zstd level 3 everywhere."
  echo
  echo "| | wall time | MB/s | stored bytes | load (1/5/15 min) at start |"
  echo "|---|---|---|---|---|"
  printf '| Lifeboat full backup (stream + verify + manifest) | %.1f s | %s | %s (%s MB) | %s |\n' "$lb_wall" "$(mbps "$lb_wall")" "$lb_stored" "$(mb "${lb_stored:-0}")" "$load_lb"
  printf '| pgbackrest backup --type=full (process-max 2) | %.1f s | %s | %s (%s MB) | %s |\n' "$pgbr_wall" "$(mbps "$pgbr_wall")" "$pgbr_stored" "$(mb "$pgbr_stored")" "$load_pgbr"
  printf '| bound: pg_basebackup \\| zstd -3 -T2 > /dev/null | %.1f s | %s | %s (%s MB, not stored) | %s |\n' "$bound_wall" "$(mbps "$bound_wall")" "$bound_bytes" "$(mb "$bound_bytes")" "$load_bound"
  echo
  echo "| ratio | value | goal |"
  echo "|---|---|---|"
  r1=$(ratio "$lb_wall" "$pgbr_wall"); r2=$(ratio "$lb_wall" "$bound_wall")
  echo "| Lifeboat / pgBackRest wall time | $r1 | ≤ 0.80: $( (($(echo "$r1 <= 0.80" | bc))) && echo met || echo NOT met) |"
  echo "| Lifeboat / bound wall time | $r2 | ≤ 1.20: $( (($(echo "$r2 <= 1.20" | bc))) && echo met || echo NOT met) |"
  echo "| Lifeboat / pgBackRest stored bytes | $(ratio "${lb_stored:-0}" "$pgbr_stored") | |"
  echo
  echo "Lifeboat's own timings from its manifest $lb_id (ms): \`$lb_timings\`; verification method"
  echo "\`$lb_verify\`; raw (tar) bytes $lb_raw. Stream phase alone (checkpoint + pg_basebackup → zstd → age → S3):"
  echo "$lb_stream_s s = $(ratio "$lb_stream_s" "$pgbr_wall") × pgBackRest, $(ratio "$lb_stream_s" "$bound_wall") × the bound."
  echo "pgBackRest repo path in total (with backup.info, archive.info): $pgbr_stored_all bytes."
} | tee "$out"
# The repository's markdown is kept in Prettier's style (`npm run lint` checks it).
[[ -x node_modules/.bin/prettier ]] && node_modules/.bin/prettier --write "$out" >/dev/null 2>&1 || true
echo "written: $out"
