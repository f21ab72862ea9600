package cdc

import "context"

// ResolveStart turns the configured start (current, earliest, gtid:SET or
// file:NAME:POS) into a concrete checkpoint on the source, as Run does when
// it has no checkpoint. Call Inspect first so the flavor is known. It is
// how an operator picks a new position after a purge (rowhook position).
func (r *Reader) ResolveStart(ctx context.Context) (Checkpoint, error) {
	return r.resolveStart(ctx)
}
