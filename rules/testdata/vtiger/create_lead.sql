-- A Lead created like Vtiger 8.3 does (one autocommit transaction per statement).
SET @user = 1;
SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s');
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
SET @crmid = LAST_INSERT_ID();
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(@crmid,@user,@user,0,'Leads','Asked for a demo',@user,@now,@now,'WEBFORM','John Smith');
SELECT cur_id, prefix INTO @cur_id, @prefix FROM vtiger_modentity_num WHERE semodule='Leads' AND active=1;
UPDATE vtiger_modentity_num SET cur_id=@cur_id+1 where cur_id=@cur_id and active=1 AND semodule='Leads';
insert into vtiger_leaddetails(leadid,lead_no,email,interest,firstname,salutation,lastname,company,annualrevenue,industry,campaign,rating,leadstatus,leadsource,converted,designation,licencekeystatus,space,comments,priority,demorequest,partnercontact,productversion,product,maildate,nextstepdate,fundingsituation,purpose,evaluationstatus,transferdate,revenuetype,noofemployees,secondaryemail,assignleadchk,emailoptout,tags)
  values(@crmid,CONCAT(@prefix,@cur_id),'john@globex.example','','John','Mr.','Smith','Globex',0,'Manufacturing','','Warm','Not Contacted','Web Site',0,'','','','','','','','','',NULL,NULL,'','','',NULL,'',250,'',0,'0','');
insert into vtiger_crmentity_user_field(recordid,userid,starred) values(@crmid,@user,'0');
