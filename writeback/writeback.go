// Package writeback writes values from web service responses back into CRM
// columns on the primary database, tagged so that rowhook recognises its own
// writes when they come back through the replica's binlog.
package writeback

// Tag is the comment every writeback statement carries; the cdc reader sees
// it in the binlog's Annotate_rows / Rows_query events, and rules skip
// changes whose statement carries it.
const Tag = "/* rowhook writeback"
