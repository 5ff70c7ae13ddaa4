#!/usr/bin/env bash
# Full-backup benchmark (not a test): Lifeboat vs pgBackRest vs the pg_basebackup | zstd bound,
# in one run, on the same database, the same S3 server and the same zstd level (3).
#
#   LIFEBOAT_STATE=/tmp/stack900 LIFEBOAT_PORT_OFFSET=900 [BENCH_ROUNDS=3] bash bench/backup.sh [pgbench scale] [--keep]
#
# Needs: a running local stack (`lifeboat stack up` with the same LIFEBOAT_STATE), root (pgBackRest
# must run as the OS user owning the data directory, postgres), pgbench/psql (Debian
# postgresql-client), pgbackrest (Debian 2.45), zstd, jq, bc.
# It builds the database `bench` with ../shared/bench/dataset.sh (pgbench scale 60 by default, a
# smaller scale for a quick run, + 3M md5 rows),
# fills the page cache (bench/warm-memory.sh; BENCH_WARM=0 skips it), then runs BENCH_ROUNDS rounds
# (default 3) that alternate whether Lifeboat or pgBackRest goes first, each round:
#   1. Lifeboat: `lifeboat backup full --database bench` through real workers (us-east-1, us-west-2):
#      streamed, its files checked against backup_manifest as they stream, read back and decrypted;
#      its phases and stored bytes from the command's --json result;
#   2. `pgbackrest backup --type=full` to an S3 repo on the same SeaweedFS (zstd 3, process-max 2,
#      aes-256-cbc), stored bytes by listing the repo path; then, timed apart, `pgbackrest verify`
#      (process-max 2), which re-reads and checks what the backup stored: a context row, the work
#      Lifeboat's verification does and `backup` alone does not;
#   3. the bound: `pg_basebackup -Ft -Xf -c fast -D - | zstd -3 -T2` (the compressed stream is only
#      counted, not stored).
# The ratios are of the sums over the rounds. Prints the tables and writes them to
# bench/results/<date>.md. Cleans up afterwards (drops `bench`, deletes the pgBackRest repo path and
# bench's Lifeboat backups) unless --keep.
set -euo pipefail
rounds=${BENCH_ROUNDS:-3}
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

. bench/warm-memory.sh
warm_memory

# ---------------------------------------------------------------------------------------------
sum() { echo "$1 + $2" | bc; }
lifeboat_backup() {
  settle
  echo "== round $1: lifeboat backup full"
  lb_load=$(load)
  local t0 t1 out=$work/lifeboat-backup-$1.json
  t0=$(now)
  bin/lifeboat backup full --database "$db" -f "$plan" --json >"$out"
  t1=$(now)
  lb_wall=$(secs "$t0" "$t1")
  lb_stored=$(jq -r .storedBytes "$out")
  lb_raw=$(jq -r .rawBytes "$out")
  lb_stream=$(jq -r '.streamMs / 1000' "$out")
  lb_workflow=$(jq -r '.durationMs / 1000' "$out")
  lb_verify=$(jq -r .verification.method "$out")
}
pgbackrest_backup() {
  settle
  echo "== round $1: pgbackrest backup --type=full, then pgbackrest verify"
  pgbr_load=$(load)
  local t0 t1 t2
  t0=$(now)
  pgbackrest_ backup --type=full
  t1=$(now)
  pgbackrest_ verify --process-max=2
  t2=$(now)
  pgbr_wall=$(secs "$t0" "$t1")
  pgbr_verify_wall=$(secs "$t1" "$t2")
  # retention-full=1: the repository holds this round's backup only.
  pgbr_stored=$(node bench/s3.ts du "$plan" "$secrets" "pgbackrest-bench/$run_id/backup/" | jq -r .bytes)
}
bound() {
  settle
  echo "== round $1: bound: pg_basebackup -Ft -Xf -c fast -D - | zstd -3 -T2"
  bound_load=$(load)
  local t0 t1
  t0=$(now)
  bound_bytes=$(pg_basebackup -h "$pgsock" -p "$pgport" -U postgres -Ft -Xf -c fast -D - | zstd -3 -T2 -c | wc -c)
  t1=$(now)
  bound_wall=$(secs "$t0" "$t1")
}
rows=()
lb_sum=0 lb_stream_sum=0 pgbr_sum=0 pgbr_verify_sum=0 bound_sum=0
for ((round = 1; round <= rounds; round++)); do
  in_alternating_order "$round" lifeboat_backup pgbackrest_backup
  bound "$round"
  lb_sum=$(sum "$lb_sum" "$lb_wall")
  lb_stream_sum=$(sum "$lb_stream_sum" "$lb_stream")
  pgbr_sum=$(sum "$pgbr_sum" "$pgbr_wall")
  pgbr_verify_sum=$(sum "$pgbr_verify_sum" "$pgbr_verify_wall")
  bound_sum=$(sum "$bound_sum" "$bound_wall")
  rows+=("| $round | $order | $lb_wall s (workflow $lb_workflow s, of which streaming $lb_stream s) | $pgbr_wall s | $pgbr_verify_wall s | $bound_wall s | $(echo "scale=2; $lb_wall / $pgbr_wall" | bc) | $lb_load / $pgbr_load / $bound_load |")
done

# ---------------------------------------------------------------------------------------------
mbps() { echo "scale=1; $cluster_bytes * $rounds / 1000000 / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
avg() { echo "scale=2; $1 / $rounds" | bc; }
date_tag=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p bench/results
out=bench/results/$date_tag.md
r_pgbr=$(ratio "$lb_sum" "$pgbr_sum")
r_bound=$(ratio "$lb_sum" "$bound_sum")
{
  echo "# Full backup benchmark, $date_tag"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); PostgreSQL $(psql "$su_conn dbname=postgres" -Atc 'show server_version');"
  echo "pgBackRest $(pgbackrest version | awk '{print $2}'); zstd $(zstd -V | grep -o 'v[0-9.]*'); Node $(node -v)."
  echo "Database \`$db\` (dataset.sh: pgbench scale $scale + 3M md5 rows): $(mb "$db_bytes") MB;"
  echo "the whole cluster every tool copies: $(mb "$cluster_bytes") MB (MB/s below are of this, 1 MB = 10^6 B)."
  echo "Storage: the stack's SeaweedFS over HTTPS (loopback), same bucket. zstd level 3 everywhere."
  echo "$rounds rounds, alternating whether Lifeboat or pgBackRest goes first. Memory: $warm_note."
  echo
  echo "| round | first | Lifeboat full backup (stream + verify + manifest) | pgbackrest backup --type=full | pgbackrest verify | bound | Lifeboat / pgBackRest | load at start (Lifeboat / pgBackRest / bound) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "| | mean wall time | MB/s | stored bytes (last round) |"
  echo "|---|---|---|---|"
  echo "| Lifeboat full backup (stream, files checked, read back, decrypted, manifest) | $(avg "$lb_sum") s | $(mbps "$lb_sum") | $lb_stored ($(mb "$lb_stored") MB) |"
  echo "| … of which streaming (checkpoint + pg_basebackup → zstd → age → S3, files checked) | $(avg "$lb_stream_sum") s | $(mbps "$lb_stream_sum") | |"
  echo "| pgbackrest backup --type=full (process-max 2) | $(avg "$pgbr_sum") s | $(mbps "$pgbr_sum") | $pgbr_stored ($(mb "$pgbr_stored") MB) |"
  echo "| pgbackrest backup, then pgbackrest verify (context: a read-back like Lifeboat's) | $(avg "$(sum "$pgbr_sum" "$pgbr_verify_sum")") s | $(mbps "$(sum "$pgbr_sum" "$pgbr_verify_sum")") | |"
  echo "| bound: pg_basebackup \\| zstd -3 -T2 > /dev/null | $(avg "$bound_sum") s | $(mbps "$bound_sum") | $bound_bytes ($(mb "$bound_bytes") MB, not stored) |"
  echo
  echo "| ratio (sums over the rounds) | value | goal |"
  echo "|---|---|---|"
  echo "| Lifeboat / pgBackRest wall time | $r_pgbr | ≤ 0.80: $( (($(echo "$r_pgbr <= 0.80" | bc))) && echo met || echo NOT met) |"
  echo "| Lifeboat / bound wall time | $r_bound | ≤ 1.20: $( (($(echo "$r_bound <= 1.20" | bc))) && echo met || echo NOT met) |"
  echo "| Lifeboat streaming alone / pgBackRest | $(ratio "$lb_stream_sum" "$pgbr_sum") | |"
  echo "| Lifeboat / (pgBackRest backup + verify) | $(ratio "$lb_sum" "$(sum "$pgbr_sum" "$pgbr_verify_sum")") | context, not the goal |"
  echo "| Lifeboat / pgBackRest stored bytes | $(ratio "${lb_stored:-0}" "$pgbr_stored") | |"
  echo
  echo "Lifeboat's verification method: \`$lb_verify\`; raw (tar) bytes $lb_raw."
} | tee "$out"
# The repository's markdown is kept in Prettier's style (`npm run lint` checks it).
[[ -x node_modules/.bin/prettier ]] && node_modules/.bin/prettier --write "$out" >/dev/null 2>&1 || true
echo "written: $out"
