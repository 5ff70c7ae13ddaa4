#!/usr/bin/env bash
# First start of the compose primary: the lifeboat role (replication, monitoring, promotion)
# and the replica's slot, the same as `lifeboat stack up` prepares.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U postgres -d orders <<SQL
CREATE ROLE lifeboat LOGIN REPLICATION PASSWORD '${LIFEBOAT_PG_PASSWORD}';
GRANT pg_monitor, pg_checkpoint, pg_read_all_data, pg_write_all_data TO lifeboat;
GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer), pg_switch_wal(), pg_create_restore_point(text) TO lifeboat;
ALTER DATABASE orders OWNER TO lifeboat;
SELECT pg_create_physical_replication_slot('replica_us_west_2');
SQL
echo "host replication lifeboat all scram-sha-256" >> "$PGDATA/pg_hba.conf"
