package rules

// NewAccount, AccountUpdated, AccountDeleted: Vtiger Accounts (Organizations).
func init() {
	registerVtiger(&vtModule{
		module: "Accounts",
		noun:   "Account",
		table:  "vtiger_account",
		pk:     "accountid",
		cf:     "vtiger_accountscf",
		extras: []vtExtra{
			{table: "vtiger_accountbillads", pk: "accountaddressid", field: "billing_address"},
			{table: "vtiger_accountshipads", pk: "accountaddressid", field: "shipping_address"},
		},
		related: []vtRelated{{col: "parentid", field: "parent_name"}},
	})
}
