-- An Organization (Accounts) created the way Vtiger 8.3 does for Potentials (see
-- internal/vtiger/create_potential.sql): one autocommit transaction per statement,
-- crmid from vtiger_crmentity_seq, number from vtiger_modentity_num.
SET @user = 1;
SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s');
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
SET @account_crmid = LAST_INSERT_ID();
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(@account_crmid,@user,@user,0,'Accounts','Key account',@user,@now,@now,'CRM','Acme Corp');
SELECT cur_id, prefix INTO @cur_id, @prefix FROM vtiger_modentity_num WHERE semodule='Accounts' AND active=1;
UPDATE vtiger_modentity_num SET cur_id=@cur_id+1 where cur_id=@cur_id and active=1 AND semodule='Accounts';
insert into vtiger_account(accountid,account_no,accountname,parentid,account_type,industry,annualrevenue,rating,ownership,siccode,tickersymbol,phone,otherphone,email1,email2,website,fax,employees,emailoptout,notify_owner,isconvertedfromlead,tags)
  values(@account_crmid,CONCAT(@prefix,@cur_id),'Acme Corp',0,'Customer','Technology',1200000,'Active','','','','+1 555 0100','','info@acme.example','','https://acme.example','',500,'0','0','0','');
insert into vtiger_accountbillads(accountaddressid,bill_city,bill_code,bill_country,bill_state,bill_street,bill_pobox)
  values(@account_crmid,'Springfield','12345','USA','IL','1 Main St','');
insert into vtiger_accountshipads(accountaddressid,ship_city,ship_code,ship_country,ship_state,ship_pobox,ship_street)
  values(@account_crmid,'Springfield','12345','USA','IL','','1 Main St');
insert into vtiger_accountscf(accountid) values(@account_crmid);
insert into vtiger_crmentity_user_field(recordid,userid,starred) values(@account_crmid,@user,'0');
