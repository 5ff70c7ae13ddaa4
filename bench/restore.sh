#!/usr/bin/env bash
# Point-in-time restore benchmark (not a test): Lifeboat vs `pgbackrest restore --type=time`, in one
# run, the same database, the same target time T, the same S3 server, both promoted at T.
#
#   LIFEBOAT_STATE=/tmp/stack900 LIFEBOAT_PORT_OFFSET=900 [BENCH_ROUNDS=2] bash bench/restore.sh [pgbench scale] [--keep]
#
# Needs what bench/backup.sh needs (root, a running local stack with the same LIFEBOAT_STATE,
# pgbench/psql, pgbackrest, zstd, jq, bc). The database `bench` comes from ../shared/bench/dataset.sh
# (pgbench scale 60 by default + 3M md5 rows, ~1.3 GB; a smaller scale for a quick run).
#   1. Lifeboat: WAL archiver + `lifeboat backup full`; pgBackRest: its own S3 repo (SeaweedFS over
#      TLS) and `backup --type=full`. The stack does not archive (archive_mode off): a physical slot
#      keeps the WAL in pg_wal and it is pushed with `pgbackrest archive-push` afterwards.
#   2. A pgbench write load of 20 s; T = its middle. The WAL is sealed and both archives hold it.
#   3. Timed, each from the command to a server that accepts connections, promoted at T, in
#      BENCH_ROUNDS rounds (default 2) that alternate which tool goes first:
#      - `lifeboat restore --database bench --to T --region us-west-2` (its RTO breakdown kept);
#      - `pgbackrest restore --type=time --target=T --target-action=promote` (process-max 2) into
#        a temp dir, then `pg_ctl start -w` and polling until pg_is_in_recovery() is false.
#   4. Both restores are checked to hold the same pgbench_history row count (same point).
#   Before the timed rounds the page cache is filled (BENCH_WARM=0 skips it, see bench/warm-memory.sh).
# Prints one table and writes it to bench/results/restore-<date>.md; cleans up unless --keep.
set -euo pipefail
rounds=${BENCH_ROUNDS:-2}
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$here"
. bench/setup.sh "$@"

echo "Temporal: $TEMPORAL_ADDRESS"
work=$(mktemp -d /tmp/lifeboat-restore-bench.XXXXXX)
chmod 755 "$work"
plan=$work/plan.yaml
node bench/s3.ts plan "$stack_plan" "$plan" "$db"
yq() { node -e 'const Y=require("yaml");const p=Y.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(eval(process.argv[2]))' "$plan" "$1"; }
region=$(yq 'p.databases.bench.primaryRegion')
pgport=$(yq "p.regions['$region'].postgres.port")
pgdata=$state/postgres/$region
pgsock=$state/run/pg-$region
su_conn="host=$pgsock port=$pgport user=postgres"
bucket_prefix=$(yq 'new URL(p.storage.primary.url).pathname.replace(/^\/+|\/+$/g,"")')
pgbin=/usr/lib/postgresql/15/bin
slot=pgbackrest_restore_bench
set -a; . "$secrets"; set +a
sql() { psql "$su_conn dbname=${2:-postgres}" -Atqc "$1"; }
pg_ctl_() { runuser -u postgres -- "$pgbin/pg_ctl" "$@"; }

workers=()
# Every restore's data directory, kept (its server stopped) until the end: see restore_lifeboat.
restored=()
cleanup() {
  local code=$?
  for d in "${restored[@]}"; do
    [[ -n $d && -f $d/postmaster.pid ]] && pg_ctl_ stop -m immediate -w -D "$d" >/dev/null 2>&1 || true
  done
  bin/lifeboat archiver stop --database "$db" -f "$plan" >/dev/null 2>&1 || true
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((keep == 0)); then
    echo "cleaning up: slots, database $db, the pgBackRest repo path and $db's Lifeboat backups"
    for s in "$slot" lifeboat_wal_$db; do
      sql "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '$s' and not active" >/dev/null || true
    done
    sql "drop database if exists $db" || true
    node bench/s3.ts rm "$plan" "$secrets" "pgbackrest-restore-bench/" || true
    node bench/s3.ts rm "$plan" "$secrets" "$bucket_prefix/databases/$db/" || true
    rm -rf "$work"
  else
    rm -f "$work/warm"
    echo "kept: $work (restored servers stopped)"
  fi
  exit $code
}
trap cleanup EXIT


# ---------------------------------------------------------------------------------------------
echo "== dataset (pgbench scale $scale + 3M md5 rows)"
sql "select 1 from pg_database where datname='$db'" | grep -q 1 || sql "create database $db owner lifeboat"
bash "$dataset" "$su_conn dbname=$db" "$scale"
psql "$su_conn dbname=$db" -qc "vacuum (analyze)"
sql "checkpoint"
db_bytes=$(sql "select pg_database_size('$db')")
sql "select pg_create_physical_replication_slot('$slot', true) where not exists (select 1 from pg_replication_slots where slot_name = '$slot')" >/dev/null

echo "== workers, WAL archiver, Lifeboat full backup"
for r in $(yq 'Object.keys(p.regions).join(" ")'); do
  LIFEBOAT_RESTORE_ROOT=$work/lifeboat-restores bin/lifeboat worker --region "$r" -f "$plan" --env-file "$secrets" >"$work/worker-$r.log" 2>&1 &
  workers+=($!)
done
for r in $(yq 'Object.keys(p.regions).join(" ")'); do
  for _ in $(seq 120); do grep -q 'polling' "$work/worker-$r.log" && break; sleep 0.5; done
  grep -q 'polling' "$work/worker-$r.log" || { cat "$work/worker-$r.log"; exit 1; }
done
bin/lifeboat archiver start --database "$db" -f "$plan" >/dev/null
bin/lifeboat backup full --database "$db" -f "$plan" --json >"$work/lifeboat-backup.json"

echo "== pgBackRest stanza and full backup"
. bench/pgbackrest-repo.sh
pgbackrest_repo pgbackrest-restore-bench
pgbackrest_ backup --type=full

echo "== write load (pgbench 20 s); T in its middle"
pgbench -n -c 2 -T 20 "$su_conn dbname=$db" >"$work/pgbench.log" 2>&1 &
load_pid=$!
sleep 10
target=$(sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
wait "$load_pid"
end_lsn=$(sql "select pg_current_wal_insert_lsn()")
sql "select pg_switch_wal()" >/dev/null
last=$(sql "select pg_walfile_name('$end_lsn')")
echo "   T = $target; WAL up to $last"
for i in $(seq 240); do
  node bench/s3.ts du "$plan" "$secrets" "$bucket_prefix/databases/$db/wal/${last:0:8}/$last.zst.age" | jq -e '.objects > 0' >/dev/null && break
  ((i < 240)) || { echo "$last not archived by Lifeboat within 120 s" >&2; exit 1; }
  sleep 0.5
done
first=$(pgbackrest_ info --output=json | jq -r '.[0].backup[-1].archive.start')
pushed=0
for f in $(ls "$pgdata/pg_wal" | sort); do
  if [[ $f == *.history ]] || [[ $f =~ ^[0-9A-F]{24}$ && ${f:0:8} == "${last:0:8}" && ! ${f:8} < ${first:8} && ! ${f:8} > ${last:8} ]]; then
    pgbackrest_ archive-push "$pgdata/pg_wal/$f"
    pushed=$((pushed + 1))
  fi
done
echo "   pgBackRest: $pushed WAL files pushed from $first"
sql "select pg_drop_replication_slot('$slot')" >/dev/null
sync

# ---------------------------------------------------------------------------------------------
. bench/warm-memory.sh
warm_memory

# ---------------------------------------------------------------------------------------------
# Each restore stops its server and syncs (its files stay until the end, see below), and the
# rounds alternate which tool goes first: whichever restore ran just before another changed how
# fast the other one wrote (the page cache), by up to 1.5 s.
restore_lifeboat() {
  echo "== round $1: lifeboat restore --to $target"
  lb_load=$(load)
  local t0 t1 out=$work/lifeboat-restore-$1.json
  t0=$(now)
  bin/lifeboat restore --database "$db" --to "$target" --region us-west-2 -f "$plan" --json >"$out"
  t1=$(now)
  lb_wall=$(secs "$t0" "$t1")
  lb_dir=$(jq -r .instance.dataDir "$out")
  restored+=("$lb_dir")
  lb_rto=$(jq -c '.rto' "$out")
  lb_stored=$(jq -r .bytes.stored "$out")
  lb_raw=$(jq -r .bytes.raw "$out")
  lb_rows=$(PGPASSWORD=$LIFEBOAT_PG_PASSWORD psql "host=127.0.0.1 port=$(jq -r .instance.port "$out") user=lifeboat dbname=$db" -Atc "select count(*) from pgbench_history")
  pg_ctl_ stop -m fast -w -D "$lb_dir" >/dev/null
  # Kept, not deleted, until the end: ext4 will not reuse an inode deleted in the last minute
  # and scans past each one, so a restore that followed the deletion of the previous one's
  # ~1 600 files paid 0.3-0.9 s more in tar's file creations (strace: openat 117 µs per call,
  # 296-685 µs right after such a deletion), and more for the tool with one writer than for the
  # one with two. Kept, no restore follows a mass deletion.
  sync
}
restore_pgbackrest() {
  echo "== round $1: pgbackrest restore --type=time --target=$target"
  local port t0 t_files t_started t1
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  pgbr_dir=$work/pgbackrest-restore-$1
  restored+=("$pgbr_dir")
  install -d -o postgres -g postgres -m 700 "$pgbr_dir"
  pgbr_load=$(load)
  t0=$(now)
  pgbackrest_ restore --pg1-path="$pgbr_dir" --type=time --target="$(sed 's/T/ /; s/Z$/+00/' <<<"$target")" --target-action=promote
  t_files=$(now)
  pg_ctl_ start -w -t 3600 -D "$pgbr_dir" -l "$pgbr/log/restored.log" \
    -o "-c port=$port -c listen_addresses='127.0.0.1' -c unix_socket_directories='' -c archive_mode=off -c primary_conninfo='' -c hot_standby=on" >/dev/null
  t_started=$(now)
  pgbr_psql() { PGPASSWORD=$LIFEBOAT_PG_PASSWORD psql "host=127.0.0.1 port=$port user=lifeboat dbname=$db" -Atc "$1"; }
  until [[ $(pgbr_psql "select pg_is_in_recovery()" 2>/dev/null) == f ]]; do sleep 0.1; done
  t1=$(now)
  pgbr_wall=$(secs "$t0" "$t1")
  pgbr_parts="files $(secs "$t0" "$t_files") s, start $(secs "$t_files" "$t_started") s, to promoted $(secs "$t_started" "$t1") s"
  pgbr_rows=$(pgbr_psql "select count(*) from pgbench_history")
  pg_ctl_ stop -m fast -w -D "$pgbr_dir" >/dev/null
  sync
}
ms() { echo "scale=1; $(jq -r ".$1" <<<"$lb_rto") / 1000" | bc; }
rows=()
lb_sum=0
pgbr_sum=0
for ((round = 1; round <= rounds; round++)); do
  in_alternating_order "$round" restore_lifeboat restore_pgbackrest
  [[ $lb_rows == "$pgbr_rows" ]] || { echo "pgbench_history rows differ in round $round: Lifeboat $lb_rows, pgBackRest $pgbr_rows" >&2; exit 1; }
  lb_sum=$(echo "$lb_sum + $lb_wall" | bc)
  pgbr_sum=$(echo "$pgbr_sum + $pgbr_wall" | bc)
  rows+=("| $round | $order | $lb_wall s (resolve $(ms resolveMs), download $(ms downloadMs), start $(ms startMs), replay $(ms replayMs), validate $(ms validateMs) s) | $pgbr_wall s ($pgbr_parts) | $(echo "scale=2; $lb_wall / $pgbr_wall" | bc) | $lb_load / $pgbr_load | $lb_rows |")
done

# ---------------------------------------------------------------------------------------------
ratio=$(echo "scale=2; $lb_sum / $pgbr_sum" | bc)
date_tag=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p bench/results
out=bench/results/restore-$date_tag.md
{
  echo "# Point-in-time restore benchmark, $date_tag"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr), shared with other workloads (load averages below);"
  echo "PostgreSQL $(sql 'show server_version'); pgBackRest $(pgbackrest version | awk '{print $2}'); Node $(node -v)."
  echo "Database \`$db\` (dataset.sh, pgbench scale $scale + 3M md5 rows): $(echo "scale=1; $db_bytes / 1000000" | bc) MB;"
  echo "a 20 s pgbench write load after both backups, target T = $target (its middle), both promoted at T."
  echo "Storage: the stack's SeaweedFS over HTTPS (loopback), same bucket; zstd 3 both; pgBackRest process-max 2."
  echo "Lifeboat: $lb_stored bytes stored → $lb_raw restored. Each restore is stopped and synced before the next (its files kept until the end);"
  echo "the rounds alternate which tool goes first. Memory: $warm_note."
  echo
  echo "Wall time, command → a server accepting connections at T: \`lifeboat restore --to T\` (the CLI: download, replay, validate;"
  echo "its breakdown is the workflow's own) and \`pgbackrest restore --type=time\` + \`pg_ctl start\` + promoted."
  echo
  echo "| round | first | Lifeboat | pgBackRest | ratio | load at start (Lifeboat / pgBackRest) | pgbench_history rows (both) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Lifeboat / pgBackRest over the $rounds rounds (sum of wall times): **$ratio** (goal ≤ 0.90: $( (($(echo "$ratio <= 0.90" | bc))) && echo met || echo NOT met))."
} | tee "$out"
[[ -x node_modules/.bin/prettier ]] && node_modules/.bin/prettier --write "$out" >/dev/null 2>&1 || true
echo "written: $out"
