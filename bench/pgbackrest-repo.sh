# Sourced by bench/backup.sh and bench/restore.sh (not run on its own): one pgBackRest repository
# on the stack's SeaweedFS, configured the same way for every comparison.
#
#   pgbackrest_repo <repo path root>    e.g. pgbackrest-bench
#
# Expects from the caller: work (a temp folder), state (the stack folder), plan (the bench plan),
# db, pgdata, pgport, pgsock, and LIFEBOAT_S3_ACCESS_KEY_ID / LIFEBOAT_S3_SECRET_ACCESS_KEY in the
# environment (the stack's secrets.env). Sets pgbr (its folder) and run_id, defines pgbackrest_
# (pgbackrest as the postgres user with this config and stanza) and creates the stanza.
#
# Config, lock and log paths live in the work folder (owned by postgres). WAL archiving is not
# configured (the stack's archive_mode is off), so archive-check=n: a backup carries its WAL but
# is not restorable by pgBackRest without an archive (bench/restore.sh pushes one itself).
# The endpoint is `localhost`, not 127.0.0.1: pgBackRest 2.45 checks only DNS names of the
# certificate, and the stack's certificate names both.
pgbackrest_repo() {
  local root=$1 s3port
  pgbr=$work/pgbackrest
  # A fresh repo path per run: SeaweedFS keeps emptied folders, and stanza-create refuses those.
  run_id=run-$(date -u +%Y%m%dT%H%M%SZ)
  install -d -o postgres -g postgres -m 700 "$pgbr" "$pgbr/lock" "$pgbr/log" "$pgbr/spool"
  s3port=$(node -e 'const Y=require("yaml");console.log(new URL(Y.parse(require("fs").readFileSync(process.argv[1],"utf8")).storage.primary.endpoint).port)' "$plan")
  cat >"$pgbr/pgbackrest.conf" <<CONF
[global]
repo1-type=s3
repo1-s3-endpoint=localhost
repo1-s3-port=$s3port
repo1-s3-bucket=lifeboat-backups
repo1-path=/$root/$run_id
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-s3-key=$LIFEBOAT_S3_ACCESS_KEY_ID
repo1-s3-key-secret=$LIFEBOAT_S3_SECRET_ACCESS_KEY
repo1-storage-ca-file=$state/tls/ca.pem
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=lifeboat-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
repo1-retention-full=1
compress-type=zst
compress-level=3
process-max=2
start-fast=y
archive-check=n
lock-path=$pgbr/lock
log-path=$pgbr/log
spool-path=$pgbr/spool
log-level-console=warn
log-level-file=info

[$db]
pg1-path=$pgdata
pg1-port=$pgport
pg1-socket-path=$pgsock
CONF
  chown postgres:postgres "$pgbr/pgbackrest.conf"
  chmod 600 "$pgbr/pgbackrest.conf"
  pgbackrest_ stanza-create
}

pgbackrest_() { runuser -u postgres -- pgbackrest --config="$pgbr/pgbackrest.conf" --stanza="$db" "$@"; }
