package cdc

import "context"

// ResolveStart turns the configured start (current, earliest, gtid:SET or
// file:NAME:POS) into a concrete checkpoint on the source, as Run does when
// it has no checkpoint. Call Inspect first so the flavor is known. It is
// how an operator picks a new position after a purge (rowhook position).
func (r *Reader) ResolveStart(ctx context.Context) (Checkpoint, error) {
	return r.resolveStart(ctx)
}

// BinaryLogs lists the binlog files the source still has, oldest first
// (SHOW BINARY LOGS).
func (r *Reader) BinaryLogs(ctx context.Context) ([]string, error) {
	return r.binaryLogs(ctx)
}
