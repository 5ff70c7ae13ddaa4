#!/usr/bin/env bash
# The compose replica: a base backup of the primary over the replication slot, then a hot standby.
set -euo pipefail
export PGPASSWORD="$LIFEBOAT_PG_PASSWORD"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres-us-east-1 -U lifeboat; do sleep 1; done
  gosu postgres pg_basebackup -h postgres-us-east-1 -U lifeboat -D "$PGDATA" -R -S replica_us_west_2 -X stream
fi
exec gosu postgres postgres -D "$PGDATA" -c hot_standby=on
