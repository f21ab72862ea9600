#!/bin/bash
# Sourced by the mariadb image's entrypoint on the replica's first start.
# Points the replica at the primary with GTID replication from the primary's
# first transaction (empty gtid_slave_pos), so it replays the primary's
# whole history: the vtiger schema and the rowhook accounts included.
# The replica's own settings are deploy/mariadb/rowhook-replica.cnf, the
# file a DBA puts on a real replica.
# Sourced, not run: no `set -u` here, it would leak into the entrypoint.
# The passwords come as Docker secrets (VAR_FILE=/run/secrets/…): the
# entrypoint's file_env reads VAR_FILE into VAR (VAR itself still works).
file_env REPLICATION_PASSWORD
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
repl_pw=$(docker_sql_escape_string_literal "$REPLICATION_PASSWORD")

docker_process_sql --database=mysql <<SQL
SET SESSION sql_log_bin = 0;
SET GLOBAL gtid_slave_pos = '';
CHANGE MASTER TO
  MASTER_HOST = '${PRIMARY_HOST:-primary}',
  MASTER_PORT = ${PRIMARY_PORT:-3306},
  MASTER_USER = 'repl',
  MASTER_PASSWORD = '${repl_pw}',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5;
START SLAVE;
SQL
