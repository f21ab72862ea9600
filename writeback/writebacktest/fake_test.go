package writebacktest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/writeback"
	"github.com/rowhook/rowhook/writeback/writebacktest"
)

// applier is what a caller of the writeback package depends on; the real
// Writer and the fake both provide it.
type applier interface {
	Apply(ctx context.Context, deliveryID, rule string, change *cdc.Change, resp writeback.Response) error
	Has(rule string) bool
}

var (
	_ applier = (*writeback.Writer)(nil)
	_ applier = (*writebacktest.Writer)(nil)
)

func TestWriter_Apply(t *testing.T) {
	boom := &writeback.DBError{Op: "update", Transient: true, Err: errors.New("connection refused")}
	w := &writebacktest.Writer{
		ApplyFunc: func(_ context.Context, id, _ string, _ *cdc.Change, _ writeback.Response) error {
			if id == "fail" {
				return boom
			}
			return nil
		},
		HasFunc: func(rule string) bool { return rule == "r" },
	}
	if err := w.Apply(context.Background(), "ok", "r", nil, writeback.Response{Status: 201}); err != nil {
		t.Fatal(err)
	}
	if err := w.Apply(context.Background(), "fail", "r", nil, writeback.Response{}); !errors.Is(err, boom) || writeback.IsPermanent(err) {
		t.Fatalf("Apply = %v", err)
	}
	calls := w.Calls()
	if len(calls) != 2 || calls[0].DeliveryID != "ok" || calls[0].Response.Status != 201 || calls[1].DeliveryID != "fail" {
		t.Errorf("calls %+v", calls)
	}
	if !w.Has("r") || w.Has("x") {
		t.Error("Has")
	}
	if !(&writebacktest.Writer{}).Has("any") {
		t.Error("zero fake Has")
	}
}
