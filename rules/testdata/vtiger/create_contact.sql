-- A Contact created like Vtiger 8.3 does (one autocommit transaction per statement).
-- The test schema has no vtiger_contactscf / vtiger_contactaddress tables.
SET @user = 1;
SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s');
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
SET @crmid = LAST_INSERT_ID();
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(@crmid,@user,@user,0,'Contacts','Met at the fair',@user,@now,@now,'CRM','Jane Doe');
SELECT cur_id, prefix INTO @cur_id, @prefix FROM vtiger_modentity_num WHERE semodule='Contacts' AND active=1;
UPDATE vtiger_modentity_num SET cur_id=@cur_id+1 where cur_id=@cur_id and active=1 AND semodule='Contacts';
insert into vtiger_contactdetails(contactid,contact_no,accountid,salutation,firstname,lastname,email,phone,mobile,title,department,fax,reportsto,training,usertype,contacttype,otheremail,secondaryemail,donotcall,emailoptout,imagename,reference,notify_owner,isconvertedfromlead,tags)
  values(@crmid,CONCAT(@prefix,@cur_id),@account_crmid,'Ms.','Jane','Doe','jane@acme.example','+1 555 0101','','CFO','Finance','','','','','','','','0','0','','0','0','0','');
insert into vtiger_crmentity_user_field(recordid,userid,starred) values(@crmid,@user,'0');
