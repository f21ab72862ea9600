-- A Ticket (HelpDesk) created like Vtiger 8.3 does (one autocommit transaction per statement).
SET @user = 1;
SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s');
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
SET @crmid = LAST_INSERT_ID();
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(@crmid,@user,@user,0,'HelpDesk','The export page times out',@user,@now,@now,'CUSTOMER PORTAL','Export times out');
SELECT cur_id, prefix INTO @cur_id, @prefix FROM vtiger_modentity_num WHERE semodule='HelpDesk' AND active=1;
UPDATE vtiger_modentity_num SET cur_id=@cur_id+1 where cur_id=@cur_id and active=1 AND semodule='HelpDesk';
insert into vtiger_troubletickets(ticketid,ticket_no,groupname,parent_id,product_id,priority,severity,status,category,title,solution,update_log,version_id,hours,days,contact_id,tags)
  values(@crmid,CONCAT(@prefix,@cur_id),NULL,@account_crmid,'','High','Major','Open','Big Problem','Export times out','',CONCAT('Ticket created. Assigned to user admin -- ',@now),NULL,0,0,0,'');
insert into vtiger_crmentity_user_field(recordid,userid,starred) values(@crmid,@user,'0');
