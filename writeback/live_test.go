package writeback_test

import (
	"context"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/writeback"
)

// TestWriter_Apply_liveReader: rowhook's live binlog reader on the replica
// sees the writeback as rowhook's own (annotate mode, IsOwnChange; marker
// mode, IsOwnTransaction), and a CRM user's later change to the same record
// as someone else's.
func TestWriter_Apply_liveReader(t *testing.T) {
	for _, mode := range []writeback.Mode{writeback.ModeAnnotate, writeback.ModeMarker} {
		t.Run(string(mode), func(t *testing.T) {
			c := newCRM(t)
			w := newWriter(t, c.cfg(mode), map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{ReplicaDSN: pair.Replica.URL()})
			if w.Mode() != mode {
				t.Fatalf("mode %s", w.Mode())
			}
			rcfg := cdc.DefaultConfig()
			rcfg.DSN = pair.Replica.URL()
			rcfg.Start = "earliest"
			rcfg.Include = []string{c.schema + ".*"}
			r, err := cdc.New(rcfg, cdc.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			txs := make(chan *cdc.Transaction, 1000)
			done := make(chan error, 1)
			go func() {
				done <- r.Run(ctx, cdc.Checkpoint{}, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
					if len(tx.Changes) > 0 {
						txs <- tx
					}
					return nil
				}))
			}()

			if err := w.Apply(ctx, "live-1", "r", c.change(), deliver(t, created(`{"id":"LIVE-1"}`))); err != nil {
				t.Fatal(err)
			}
			if _, err := c.db.Exec("UPDATE vtiger_potential SET sales_stage = 'Closed Lost' WHERE potentialid = ?", c.crmid); err != nil {
				t.Fatal(err)
			}

			own := func(tx *cdc.Transaction, ch *cdc.Change) bool {
				if mode == writeback.ModeMarker {
					return writeback.IsOwnTransaction(tx, w.MarkerTable())
				}
				return writeback.IsOwnChange(ch)
			}
			sawOwn := false
			for {
				select {
				case tx := <-txs:
					for i := range tx.Changes {
						ch := &tx.Changes[i]
						isOwn := own(tx, ch)
						switch {
						case ch.Table == "vtiger_potentialscf" && ch.Op == cdc.OpUpdate:
							if !isOwn || ch.After["cf_erp_id"] != "LIVE-1" {
								t.Errorf("writeback change: own %v, after %v", isOwn, ch.After)
							}
							sawOwn = true
						case isOwn && ch.Table != "rowhook_writeback_marker":
							t.Errorf("%s %s taken for rowhook's own", ch.Op, ch.Table)
						case ch.Table == "vtiger_potential" && ch.Op == cdc.OpUpdate && ch.After["sales_stage"] == "Closed Lost":
							if !sawOwn {
								t.Error("the user's change arrived before the writeback")
							}
							cancel()
							if err := <-done; err != nil {
								t.Errorf("reader: %v", err)
							}
							return
						}
					}
				case err := <-done:
					t.Fatalf("reader stopped before the user's change: %v", err)
				}
			}
		})
	}
}
