package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// engine is what the handler needs of the rules engine (*rules.Engine).
type engine interface {
	// Resume tells the engine where reading started, before the first
	// transaction: the resume point it names while a settle window
	// opened by that transaction is open.
	Resume(from cdc.Checkpoint)
	// Process evaluates the rules on one committed transaction and
	// returns the events due now.
	Process(ctx context.Context, tx *cdc.Transaction) ([]rules.Event, error)
	// Flush returns the events whose settle window has closed by now.
	Flush(ctx context.Context, now time.Time) ([]rules.Event, error)
	// Hold is the checkpoint to store while a settle window is open
	// (ok false when none is): a crash then re-reads what is held.
	Hold() (cdc.Checkpoint, bool)
}

// enqueuer is what the handler needs of the dispatcher
// (*dispatch.Dispatcher).
type enqueuer interface {
	// Enqueue stores events and the checkpoint cp in one transaction.
	Enqueue(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error
}

// positioner is what the handler needs of the binlog reader (*cdc.Reader).
type positioner interface {
	// Position is the checkpoint after the last event read.
	Position() cdc.Checkpoint
}

// ownWrites is what the handler needs of the writeback writer
// (*writeback.Writer): recognising rowhook's own transactions.
type ownWrites interface {
	// OwnTransaction reports whether tx is rowhook's own writeback.
	OwnTransaction(tx *cdc.Transaction) bool
	// Mode is how own writes are recognised (annotations or a marker).
	Mode() writeback.Mode
	// Unannotated handles transaction tx read without annotations in
	// mode annotate: it switches to the marker table or returns an error.
	Unannotated(ctx context.Context, tx string) error
	// Recheck checks again, on a binlog (re)connection, that own writes
	// will be recognised.
	Recheck(ctx context.Context) error
}

var (
	_ engine     = (*rules.Engine)(nil)
	_ positioner = (*cdc.Reader)(nil)
	_ ownWrites  = (*writeback.Writer)(nil)
)

// handler feeds committed transactions through the rules into the
// dispatcher's outbox, with the checkpoint that makes a restart safe.
type handler struct {
	engine engine
	disp   enqueuer
	reader positioner
	wb     ownWrites // nil without writeback
	// now is the clock of the quiet period (time.Now when nil).
	now func() time.Time

	once    sync.Once
	last    cdc.Checkpoint
	pending bool

	// quiet > 0 holds checkpoint-only advances back for that long after
	// the last commit; deferred is the one held back.
	quiet    time.Duration
	lastAt   time.Time
	deferred cdc.Checkpoint
}

// HandleTransaction evaluates the rules on tx and stores its events with
// the checkpoint after it (or the engine's hold point).
func (h *handler) HandleTransaction(ctx context.Context, tx *cdc.Transaction) error {
	// The reader's position before the first transaction is where reading
	// started: the engine needs it to name a resume point before a settle
	// window that transaction opens.
	h.once.Do(func() { h.engine.Resume(h.reader.Position()) })
	if h.wb != nil && h.wb.OwnTransaction(tx) {
		// rowhook's own writeback: advance past it, fire nothing.
		own := *tx
		own.Changes = nil
		tx = &own
	} else if h.wb != nil && h.wb.Mode() == writeback.ModeAnnotate && unannotated(tx) {
		// The source stopped logging annotations (a setting changed
		// without a reconnection): switch before this transaction's
		// events can lead to a writeback, or stop.
		if err := h.wb.Unannotated(ctx, tx.ID); err != nil {
			return err
		}
	}
	events, err := h.engine.Process(ctx, tx)
	if err != nil {
		return fmt.Errorf("rules on transaction %s: %w", tx.ID, err)
	}
	return h.enqueue(ctx, tx.Checkpoint, events)
}

// HandleConnect checks again, on every (re)connection of the binlog reader,
// that rowhook's writes will be recognised (Writer.Recheck): a server
// restarted without annotations switches the writer to the marker table or
// stops the pipeline with the setting to change.
func (h *handler) HandleConnect(ctx context.Context) error {
	if h.wb == nil {
		return nil
	}
	return h.wb.Recheck(ctx)
}

// unannotated reports whether tx has row changes and none carries its
// statement's text: MariaDB writes Annotate_rows before every statement's
// row events while binlog_annotate_row_events is on.
func unannotated(tx *cdc.Transaction) bool {
	for i := range tx.Changes {
		if tx.Changes[i].Annotation != "" {
			return false
		}
	}
	return len(tx.Changes) > 0
}

func (h *handler) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// HandleIdle flushes the settle windows that have closed and advances the
// checkpoint while the binlog is quiet.
func (h *handler) HandleIdle(ctx context.Context, now time.Time) error {
	events, err := h.engine.Flush(ctx, now)
	if err != nil {
		return fmt.Errorf("rules flush: %w", err)
	}
	if len(events) == 0 && !h.pending {
		return h.flushDeferred(ctx)
	}
	return h.enqueue(ctx, h.reader.Position(), events)
}

// flushDeferred commits a checkpoint-only advance held back by quiet.
func (h *handler) flushDeferred(ctx context.Context) error {
	if h.deferred.IsZero() {
		return nil
	}
	cp := h.deferred
	h.deferred = cdc.Checkpoint{}
	h.last, h.lastAt = cp, h.clock()
	return h.disp.Enqueue(ctx, cp, nil)
}

// enqueue stores events with the checkpoint after cp, or the engine's hold
// point while a settle window is open (so a crash re-reads what is held).
func (h *handler) enqueue(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error {
	held := false
	if hold, ok := h.engine.Hold(); ok {
		cp, held = hold, true
	}
	h.pending = held
	if len(events) == 0 && cp == h.last {
		return nil
	}
	if h.quiet > 0 && len(events) == 0 && h.clock().Sub(h.lastAt) < h.quiet {
		h.deferred = cp
		return nil
	}
	h.deferred = cdc.Checkpoint{}
	h.last, h.lastAt = cp, h.clock()
	return h.disp.Enqueue(ctx, cp, events)
}

var _ cdc.ConnectHandler = (*handler)(nil)
