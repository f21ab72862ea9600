-- The account rowhook reads the replica with. Run on the replica (or on the
-- primary, replicated). Replace the host and the password.
CREATE USER IF NOT EXISTS 'rowhook'@'%' IDENTIFIED BY 'change-me';
-- Read the binlog (REPLICATION SLAVE), see binlog positions and files
-- (BINLOG MONITOR, called REPLICATION CLIENT before MariaDB 10.5 and on
-- MySQL), read table definitions and records for body functions (SELECT).
GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'rowhook'@'%';
-- MySQL 8: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'rowhook'@'%';
