package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// fakeEngine is an engine whose answers the test sets; nil functions
// answer "nothing" (no events, no hold).
type fakeEngine struct {
	ResumeFunc  func(from cdc.Checkpoint)
	ProcessFunc func(ctx context.Context, tx *cdc.Transaction) ([]rules.Event, error)
	FlushFunc   func(ctx context.Context, now time.Time) ([]rules.Event, error)
	HoldFunc    func() (cdc.Checkpoint, bool)
}

func (e *fakeEngine) Resume(from cdc.Checkpoint) {
	if e.ResumeFunc != nil {
		e.ResumeFunc(from)
	}
}

func (e *fakeEngine) Process(ctx context.Context, tx *cdc.Transaction) ([]rules.Event, error) {
	if e.ProcessFunc != nil {
		return e.ProcessFunc(ctx, tx)
	}
	return nil, nil
}

func (e *fakeEngine) Flush(ctx context.Context, now time.Time) ([]rules.Event, error) {
	if e.FlushFunc != nil {
		return e.FlushFunc(ctx, now)
	}
	return nil, nil
}

func (e *fakeEngine) Hold() (cdc.Checkpoint, bool) {
	if e.HoldFunc != nil {
		return e.HoldFunc()
	}
	return cdc.Checkpoint{}, false
}

// fakeOwnWrites is an ownWrites whose answers the test sets.
type fakeOwnWrites struct {
	OwnTransactionFunc func(tx *cdc.Transaction) bool
	ModeValue          writeback.Mode
	UnannotatedFunc    func(ctx context.Context, tx string) error
	RecheckFunc        func(ctx context.Context) error
}

func (w *fakeOwnWrites) OwnTransaction(tx *cdc.Transaction) bool {
	return w.OwnTransactionFunc != nil && w.OwnTransactionFunc(tx)
}

func (w *fakeOwnWrites) Mode() writeback.Mode { return w.ModeValue }

func (w *fakeOwnWrites) Unannotated(ctx context.Context, tx string) error {
	if w.UnannotatedFunc != nil {
		return w.UnannotatedFunc(ctx, tx)
	}
	return nil
}

func (w *fakeOwnWrites) Recheck(ctx context.Context) error {
	if w.RecheckFunc != nil {
		return w.RecheckFunc(ctx)
	}
	return nil
}

// commit is one Enqueue call the handler made.
type commit struct {
	cp     cdc.Checkpoint
	events int
}

// enqueueFunc adapts a function to enqueuer.
type enqueueFunc func(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error

func (f enqueueFunc) Enqueue(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error {
	return f(ctx, cp, events)
}

// positionFunc adapts a function to positioner.
type positionFunc func() cdc.Checkpoint

func (f positionFunc) Position() cdc.Checkpoint { return f() }

// recorder is a handler on fakes that records what it commits, with a
// clock the test moves.
type recorder struct {
	h       *handler
	eng     *fakeEngine
	commits []commit
	now     time.Time
	pos     cdc.Checkpoint
}

func newRecorder() *recorder {
	r := &recorder{eng: &fakeEngine{}, now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	r.h = &handler{
		engine: r.eng,
		disp: enqueueFunc(func(_ context.Context, cp cdc.Checkpoint, events []rules.Event) error {
			r.commits = append(r.commits, commit{cp, len(events)})
			return nil
		}),
		reader: positionFunc(func() cdc.Checkpoint { return r.pos }),
		now:    func() time.Time { return r.now },
	}
	return r
}

func cp(pos uint32) cdc.Checkpoint { return cdc.Checkpoint{File: "bin.000001", Pos: pos} }

func tx(pos uint32, changes ...cdc.Change) *cdc.Transaction {
	return &cdc.Transaction{ID: "0-1-" + string(rune('0'+pos%10)), Changes: changes, Checkpoint: cp(pos)}
}

func events(n int) []rules.Event { return make([]rules.Event, n) }

func (r *recorder) want(t *testing.T, want ...commit) {
	t.Helper()
	if len(r.commits) != len(want) {
		t.Fatalf("commits %+v, want %+v", r.commits, want)
	}
	for i := range want {
		if r.commits[i] != want[i] {
			t.Fatalf("commit %d is %+v, want %+v (all: %+v)", i, r.commits[i], want[i], r.commits)
		}
	}
}

// The reader's position before the first transaction is where reading
// started: the engine gets it once, before that transaction is processed.
func TestHandler_FirstTransactionResumes(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	r.pos = cp(100)
	var resumed []cdc.Checkpoint
	processed := 0
	r.eng.ResumeFunc = func(from cdc.Checkpoint) {
		if processed != 0 {
			t.Errorf("Resume after %d transactions, want before the first", processed)
		}
		resumed = append(resumed, from)
	}
	r.eng.ProcessFunc = func(context.Context, *cdc.Transaction) ([]rules.Event, error) {
		processed++
		return nil, nil
	}
	if err := r.h.HandleTransaction(ctx, tx(200)); err != nil {
		t.Fatal(err)
	}
	r.pos = cp(200)
	if err := r.h.HandleTransaction(ctx, tx(300)); err != nil {
		t.Fatal(err)
	}
	if len(resumed) != 1 || resumed[0] != cp(100) {
		t.Errorf("Resume calls %v, want one with the start position %v", resumed, cp(100))
	}
	r.want(t, commit{cp(200), 0}, commit{cp(300), 0})
}

// While a settle window is open the checkpoint stays at the engine's hold
// point, whatever is read meanwhile: a crash re-reads what is held. Once
// the window closes, the idle flush stores its events with the reader's
// position.
func TestHandler_SettleHoldsCheckpoint(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	hold, holding := cp(150), true
	r.eng.HoldFunc = func() (cdc.Checkpoint, bool) { return hold, holding }

	if err := r.h.HandleTransaction(ctx, tx(200)); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(150), 0})
	// More transactions inside the window: the held point is committed
	// once, not again.
	for _, pos := range []uint32{300, 400} {
		if err := r.h.HandleTransaction(ctx, tx(pos)); err != nil {
			t.Fatal(err)
		}
	}
	r.pos = cp(400)
	if err := r.h.HandleIdle(ctx, r.now); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(150), 0})

	// The window closes: its event and the reader's position go together.
	holding = false
	r.eng.FlushFunc = func(context.Context, time.Time) ([]rules.Event, error) { return events(1), nil }
	if err := r.h.HandleIdle(ctx, r.now); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(150), 0}, commit{cp(400), 1})
	// Nothing more to flush and nothing held: idle commits nothing new.
	r.eng.FlushFunc = nil
	if err := r.h.HandleIdle(ctx, r.now); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(150), 0}, commit{cp(400), 1})
}

// With a pending hold, an idle tick with no events still commits the
// reader's position once the hold is released (the hold is what kept it
// back).
func TestHandler_IdleAfterHoldReleased(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	holding := true
	r.eng.HoldFunc = func() (cdc.Checkpoint, bool) { return cp(150), holding }
	if err := r.h.HandleTransaction(ctx, tx(200)); err != nil {
		t.Fatal(err)
	}
	holding = false
	r.pos = cp(250)
	if err := r.h.HandleIdle(ctx, r.now); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(150), 0}, commit{cp(250), 0})
}

// With a MySQL state store (quiet > 0), a checkpoint-only advance within a
// second of the last commit is held back, never one with events; the held
// one is committed at the next idle tick, at shutdown (flushDeferred), or
// by the next commit that carries a later checkpoint.
func TestHandler_QuietBatching(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	r.h.quiet = time.Second
	var evs []rules.Event
	r.eng.ProcessFunc = func(context.Context, *cdc.Transaction) ([]rules.Event, error) { return evs, nil }
	step := func(pos uint32, n int) {
		t.Helper()
		evs = events(n)
		if err := r.h.HandleTransaction(ctx, tx(pos)); err != nil {
			t.Fatal(err)
		}
	}

	step(100, 0) // nothing committed yet: at once
	r.want(t, commit{cp(100), 0})
	r.now = r.now.Add(100 * time.Millisecond)
	step(200, 0) // within the quiet period: held back
	step(300, 0)
	r.want(t, commit{cp(100), 0})
	step(400, 2) // events: at once, with their checkpoint
	r.want(t, commit{cp(100), 0}, commit{cp(400), 2})

	r.now = r.now.Add(200 * time.Millisecond)
	step(500, 0) // held back again
	r.want(t, commit{cp(100), 0}, commit{cp(400), 2})
	if err := r.h.HandleIdle(ctx, r.now); err != nil { // the binlog is quiet: commit what was held
		t.Fatal(err)
	}
	r.want(t, commit{cp(100), 0}, commit{cp(400), 2}, commit{cp(500), 0})

	r.now = r.now.Add(300 * time.Millisecond)
	step(600, 0)
	if err := r.h.flushDeferred(ctx); err != nil { // shutdown
		t.Fatal(err)
	}
	if err := r.h.flushDeferred(ctx); err != nil { // nothing left: no second commit
		t.Fatal(err)
	}
	r.want(t, commit{cp(100), 0}, commit{cp(400), 2}, commit{cp(500), 0}, commit{cp(600), 0})

	r.now = r.now.Add(2 * time.Second)
	step(700, 0) // the quiet period is over: at once
	r.want(t, commit{cp(100), 0}, commit{cp(400), 2}, commit{cp(500), 0}, commit{cp(600), 0}, commit{cp(700), 0})
}

// Without quiet (SQLite), every transaction's checkpoint is committed, and
// a checkpoint already committed is not committed again.
func TestHandler_NoQuietCommitsEach(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	for _, pos := range []uint32{100, 200, 300} {
		if err := r.h.HandleTransaction(ctx, tx(pos)); err != nil {
			t.Fatal(err)
		}
	}
	r.pos = cp(300)
	if err := r.h.HandleIdle(ctx, r.now); err != nil {
		t.Fatal(err)
	}
	r.want(t, commit{cp(100), 0}, commit{cp(200), 0}, commit{cp(300), 0})
}

// rowhook's own writeback transaction (and a marker transaction) fires no
// rule: the engine sees it without changes, and the checkpoint moves past
// it.
func TestHandler_OwnTransactionSkipped(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	own := tx(200, cdc.Change{Table: "vtiger_potentialscf", Annotation: writeback.Tag + " d_1 */ UPDATE"})
	r.h.wb = &fakeOwnWrites{
		ModeValue:          writeback.ModeMarker,
		OwnTransactionFunc: func(t *cdc.Transaction) bool { return t == own },
	}
	var seen []int
	r.eng.ProcessFunc = func(_ context.Context, tx *cdc.Transaction) ([]rules.Event, error) {
		seen = append(seen, len(tx.Changes))
		return events(len(tx.Changes)), nil
	}
	if err := r.h.HandleTransaction(ctx, own); err != nil {
		t.Fatal(err)
	}
	if err := r.h.HandleTransaction(ctx, tx(300, cdc.Change{Table: "vtiger_potential", Annotation: "INSERT"})); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != 0 || seen[1] != 1 {
		t.Errorf("the engine saw %v changes, want 0 for the own transaction, 1 for the user's", seen)
	}
	if len(own.Changes) != 1 {
		t.Errorf("the reader's transaction was changed: %d changes", len(own.Changes))
	}
	r.want(t, commit{cp(200), 0}, commit{cp(300), 1})
}

// In mode annotate, a transaction with changes and no annotation makes the
// writer switch (or stop) before the rules see it; annotated transactions
// and marker mode never ask.
func TestHandler_Unannotated(t *testing.T) {
	ctx := context.Background()
	stop := errors.New("writeback: annotations off")
	for _, tc := range []struct {
		name    string
		mode    writeback.Mode
		change  cdc.Change
		answer  error
		asked   bool
		wantErr error
	}{
		{"annotated", writeback.ModeAnnotate, cdc.Change{Annotation: "INSERT"}, nil, false, nil},
		{"unannotated, switched", writeback.ModeAnnotate, cdc.Change{}, nil, true, nil},
		{"unannotated, stopped", writeback.ModeAnnotate, cdc.Change{}, stop, true, stop},
		{"marker mode", writeback.ModeMarker, cdc.Change{}, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			var asked []string
			r.h.wb = &fakeOwnWrites{ModeValue: tc.mode, UnannotatedFunc: func(_ context.Context, id string) error {
				asked = append(asked, id)
				return tc.answer
			}}
			processed := false
			r.eng.ProcessFunc = func(context.Context, *cdc.Transaction) ([]rules.Event, error) {
				processed = true
				return nil, nil
			}
			x := tx(200, tc.change)
			err := r.h.HandleTransaction(ctx, x)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got := len(asked) == 1 && asked[0] == x.ID; got != tc.asked {
				t.Errorf("Unannotated calls %v, want asked=%v with %q", asked, tc.asked, x.ID)
			}
			if processed == (tc.wantErr != nil) {
				t.Errorf("processed=%v with error %v", processed, tc.wantErr)
			}
		})
	}
}

// Every (re)connection re-checks the writer; without writeback there is
// nothing to check.
func TestHandler_HandleConnect(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	if err := r.h.HandleConnect(ctx); err != nil {
		t.Fatalf("without writeback: %v", err)
	}
	lost := errors.New("annotations lost")
	calls := 0
	r.h.wb = &fakeOwnWrites{RecheckFunc: func(context.Context) error { calls++; return lost }}
	if err := r.h.HandleConnect(ctx); !errors.Is(err, lost) || calls != 1 {
		t.Errorf("HandleConnect = %v after %d Recheck calls, want the Recheck error once", err, calls)
	}
}

// A rules error names the transaction and commits nothing.
func TestHandler_RulesError(t *testing.T) {
	r := newRecorder()
	r.eng.ProcessFunc = func(context.Context, *cdc.Transaction) ([]rules.Event, error) {
		return nil, errors.New("lookup failed")
	}
	x := tx(200)
	err := r.h.HandleTransaction(context.Background(), x)
	if err == nil || err.Error() != "rules on transaction "+x.ID+": lookup failed" {
		t.Errorf("error %v", err)
	}
	r.want(t)
}
