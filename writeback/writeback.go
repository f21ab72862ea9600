// Package writeback writes values from web service responses back into CRM
// columns on the primary database, tagged so that rowhook recognises its own
// writes when they come back through the replica's binlog.
package writeback

// Tag is the comment every writeback statement carries; the cdc reader sees
// it in the binlog's Annotate_rows / Rows_query events, and rules skip
// changes whose statement carries it.
const Tag = "/* rowhook writeback"

// Mapping is a rule's `writeback:` block: after a successful delivery, set
// columns of one row on the primary from the response.
type Mapping struct {
	// Table is schema.table on the primary.
	Table string `yaml:"table"`
	// Key maps key columns to expr expressions over row/old/response.
	Key map[string]string `yaml:"key"`
	// Set maps columns to expr expressions over response/row/old.
	Set map[string]string `yaml:"set"`
	// When is an optional expr condition over response/row/old.
	When string `yaml:"when"`
}
