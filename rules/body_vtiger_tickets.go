package rules

// NewTicket, TicketUpdated, TicketDeleted: Vtiger HelpDesk (Tickets).
func init() {
	registerVtiger(&vtModule{
		module: "HelpDesk",
		noun:   "Ticket",
		table:  "vtiger_troubletickets",
		pk:     "ticketid",
		cf:     "vtiger_ticketcf",
		related: []vtRelated{
			{col: "parent_id", field: "parent_name"},
			{col: "contact_id", field: "contact_name"},
			{col: "product_id", field: "product_name"},
		},
	})
}
