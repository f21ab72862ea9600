package rules

// NewOpportunity, OpportunityUpdated, OpportunityDeleted: Vtiger Potentials.
func init() {
	registerVtiger(&vtModule{
		module: "Potentials",
		noun:   "Opportunity",
		table:  "vtiger_potential",
		pk:     "potentialid",
		cf:     "vtiger_potentialscf",
		related: []vtRelated{
			{col: "related_to", field: "related_to_name"},
			{col: "contact_id", field: "contact_name"},
			{col: "campaignid", field: "campaign_name"},
		},
	})
}
