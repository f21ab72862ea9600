package cdc

import (
	"context"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

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

// CheckResume asks the source for its binlog from cp exactly as Run does
// when it resumes (by GTID set when cp has one, else by file and offset)
// and hangs up at the source's first answer: nil when the source serves
// that position, a *PurgedError (ErrPurged) or ErrSource when it refuses,
// another error when it could not be asked. Call Inspect first.
func (r *Reader) CheckResume(ctx context.Context, cp Checkpoint) error {
	r.mu.Lock()
	flavor := r.flavor
	r.mu.Unlock()
	if cp.Flavor != "" && cp.Flavor != flavor {
		return fmt.Errorf("%w: the checkpoint is for a %s source but %s is %s", ErrSource, cp.Flavor, r.src.Redacted(), flavor)
	}
	cp.Flavor = flavor
	wd := newWatchdog(r.cfg.ReadTimeout)
	defer wd.close()
	syncer := replication.NewBinlogSyncer(r.syncerConfig(flavor, wd, nil))
	defer syncer.Close()
	streamer, err := r.startSync(ctx, syncer, cp)
	if err != nil {
		return err
	}
	// The source refuses a position it cannot serve before it sends
	// anything; it serves one with the fake rotate and then the format
	// description of the file it reads from.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cdc: %s did not answer a binlog request from %s: %w", r.src.Redacted(), cp.String(), ctx.Err())
			}
			return r.classify(ctx, err, cp)
		}
		if ev.Header.EventType == replication.FORMAT_DESCRIPTION_EVENT {
			return nil
		}
	}
}
