#!/bin/bash
# Sourced by the mariadb image's entrypoint on the primary's first start,
# after MARIADB_DATABASE (vtiger) was created and before 20-vtiger-schema.sql
# is loaded. Everything here is written to the primary's binlog, so the
# replica replays it: the rowhook account is created once, here.
#
# - repl: the replica's replication account.
# - rowhook: the account rowhook reads the replica with (deploy/mariadb/grants.sql,
#   with the password taken from ROWHOOK_SOURCE_PASSWORD).
# - rowhook_writeback: the account rowhook writes response values into the
#   CRM with (deploy/mariadb/writeback-grants.sql, password from
#   ROWHOOK_WRITEBACK_PASSWORD): SELECT and UPDATE on the CRM's tables.
# Sourced, not run: no `set -u` here, it would leak into the entrypoint.
# The passwords come as Docker secrets (VAR_FILE=/run/secrets/…): the
# entrypoint's file_env reads VAR_FILE into VAR (VAR itself still works).
file_env REPLICATION_PASSWORD
file_env ROWHOOK_SOURCE_PASSWORD
file_env ROWHOOK_WRITEBACK_PASSWORD
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
: "${ROWHOOK_SOURCE_PASSWORD:?set ROWHOOK_SOURCE_PASSWORD}"
: "${ROWHOOK_WRITEBACK_PASSWORD:?set ROWHOOK_WRITEBACK_PASSWORD}"

repl_pw=$(docker_sql_escape_string_literal "$REPLICATION_PASSWORD")
source_pw=$(docker_sql_escape_string_literal "$ROWHOOK_SOURCE_PASSWORD")
writeback_pw=$(docker_sql_escape_string_literal "$ROWHOOK_WRITEBACK_PASSWORD")
# sed replacement text: escape \, & and the delimiter |.
source_pw_sed=$(printf '%s' "$source_pw" | sed -e 's/[\\&|]/\\&/g')
writeback_pw_sed=$(printf '%s' "$writeback_pw" | sed -e 's/[\\&|]/\\&/g')

docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '${repl_pw}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL

sed -e "s|IDENTIFIED BY 'change-me'|IDENTIFIED BY '${source_pw_sed}'|" "${ROWHOOK_GRANTS_SQL:-/rowhook/grants.sql}" \
	| docker_process_sql --database=mysql
sed -e "s|IDENTIFIED BY 'change-me'|IDENTIFIED BY '${writeback_pw_sed}'|" \
	-e "s|\`vtiger\`|\`${MARIADB_DATABASE}\`|g" "${ROWHOOK_WRITEBACK_GRANTS_SQL:-/rowhook/writeback-grants.sql}" \
	| docker_process_sql --database=mysql
