package rules

import (
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// Event is a rule match ready for delivery: the body built by the rule's
// body function for one row change, as of that change's commit.
type Event struct {
	// ID is stable across replays of the same binlog: the change's ID and
	// the rule's name ("0-1-42:3:new-opportunity"). Dispatch derives one
	// delivery id per webhook from it.
	ID string
	// Rule is the name of the rule that matched.
	Rule string
	// Name is the event name: the body function's name ("NewOpportunity").
	Name string
	// Webhooks are the configured webhooks to deliver to, by name. Outside
	// subscriptions to Name are added by dispatch.
	Webhooks []string
	// Body is what the body function built.
	Body Body
	// Change is the row change that fired the rule (for URL templates and
	// writeback key expressions).
	Change *cdc.Change
	// Key identifies the record (schema.table:pk) for per-record ordering and
	// `once` markers.
	Key string
	// Once asks the store to enqueue the event only if no earlier event of the
	// same Rule and Key was enqueued; the store checks and marks in the same
	// transaction that enqueues.
	Once bool
	// Timestamp is the commit time of the change's transaction.
	Timestamp time.Time
}
