package rules

// NewLead, LeadUpdated, LeadDeleted: Vtiger Leads.
func init() {
	registerVtiger(&vtModule{
		module: "Leads",
		noun:   "Lead",
		table:  "vtiger_leaddetails",
		pk:     "leadid",
		cf:     "vtiger_leadscf",
		extras: []vtExtra{
			{table: "vtiger_leadaddress", pk: "leadaddressid", field: "address"},
			{table: "vtiger_leadsubdetails", pk: "leadsubscriptionid", field: "details"},
		},
	})
}
