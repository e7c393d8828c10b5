#!/bin/sh
# Make this machine a streaming-replication standby of the primary (Debian, PostgreSQL 15). Run as root.
# The primary needs the replicator role:  CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '…';
# and a slot:                             SELECT pg_create_physical_replication_slot('standby1');
set -eu
PRIMARY=${PRIMARY:-db-primary.internal}
systemctl stop postgresql@15-main
rm -rf /var/lib/postgresql/15/main
# -R writes standby.signal and primary_conninfo; -X stream copies the WAL needed to start; -S uses the slot.
runuser -u postgres -- pg_basebackup -h "$PRIMARY" -U replicator -D /var/lib/postgresql/15/main \
    -X stream -R -S standby1 -c fast -P
systemctl start postgresql@15-main
runuser -u postgres -- psql -Atc "SELECT pg_is_in_recovery()"   # t
