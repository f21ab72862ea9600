-- The account rowhook writes response values back with. Run on the CRM's
-- PRIMARY. Replace the password, and `vtiger` with the CRM's database.
-- It may read and update the CRM's rows; it cannot insert, delete or change
-- the schema.
CREATE USER IF NOT EXISTS 'rowhook_writeback'@'%' IDENTIFIED BY 'change-me';
GRANT SELECT, UPDATE ON `vtiger`.* TO 'rowhook_writeback'@'%';

-- Only for writeback.mode: marker (or auto when the replica does not keep
-- statement annotations): the table rowhook marks its own transactions in.
-- rowhook prints these statements itself when it needs them.
-- CREATE TABLE IF NOT EXISTS `vtiger`.`rowhook_writeback_marker` (
--   `id` SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
--   `delivery_id` VARCHAR(191) NOT NULL,
--   `at` DATETIME(6) NOT NULL
-- ) ENGINE=InnoDB COMMENT='rowhook: one row written in every writeback transaction';
-- GRANT SELECT, INSERT, UPDATE ON `vtiger`.`rowhook_writeback_marker` TO 'rowhook_writeback'@'%';
