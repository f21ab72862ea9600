package rules

// NewContact, ContactUpdated, ContactDeleted: Vtiger Contacts.
func init() {
	registerVtiger(&vtModule{
		module: "Contacts",
		noun:   "Contact",
		table:  "vtiger_contactdetails",
		pk:     "contactid",
		cf:     "vtiger_contactscf",
		extras: []vtExtra{
			{table: "vtiger_contactaddress", pk: "contactaddressid", field: "address"},
			{table: "vtiger_contactsubdetails", pk: "contactsubscriptionid", field: "details"},
		},
		related: []vtRelated{
			{col: "accountid", field: "account_name"},
			{col: "reportsto", field: "reports_to_name"},
		},
	})
}
