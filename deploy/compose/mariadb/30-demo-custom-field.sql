-- The demo's "ERP id" custom field on opportunities, where rowhook writes the
-- id the ERP answers with. Vtiger names custom field columns cf_<fieldid>.
ALTER TABLE vtiger_potentialscf ADD COLUMN cf_901 varchar(100) DEFAULT NULL;
