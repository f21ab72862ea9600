package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// commitBytes commits deliveries of 2 KiB bodies, 100 per commit, until
// about n bytes of bodies went in; from numbers deliveries from.
func commitBytes(t *testing.T, s *Store, from, n int) int {
	t.Helper()
	body := make([]byte, 2048)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ctx := context.Background()
	i := from
	for sent := 0; sent < n; {
		var ds []dispatch.NewDelivery
		for range 100 {
			d := nd(fmt.Sprintf("wal%d", i), "erp")
			d.Body = body
			ds = append(ds, d)
			i++
			sent += len(body)
		}
		if _, err := s.Commit(ctx, cp(uint32(i)), ds); err != nil {
			t.Error(err)
			return i
		}
	}
	return i
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// eventually waits (up to a minute: the machine may be busy) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}

// TestStore_WALCheckpointedInBackground: commits do not checkpoint the
// WAL (it grows past SQLite's automatic 1,000 pages while the checkpointer
// is held), the checkpointer does when signalled, and the WAL then starts
// over instead of growing. Under steady commits the writer finishes a
// checkpoint every walFinishBytes, which keeps the WAL short.
func TestStore_WALCheckpointedInBackground(t *testing.T) {
	// No checkpoints by the writer until the last part.
	finish, hard := walFinishBytes, walHardBytes
	walFinishBytes, walHardBytes = 1<<30, 1<<30
	t.Cleanup(func() { walFinishBytes, walHardBytes = finish, hard })
	path := filepath.Join(t.TempDir(), "state.db")
	hold := make(chan struct{})
	walHold = hold
	s := open(t, path)
	walHold = nil
	var auto int
	if err := s.w.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	// 24 MB of bodies: six times walSoftBytes, and more than SQLite's
	// automatic checkpoint would have let the WAL grow to (1,000 pages,
	// even of 16 KiB).
	next := commitBytes(t, s, 0, 24<<20)
	wal := path + "-wal"
	grown := fileSize(t, wal)
	if grown < 1000*16384 {
		t.Fatalf("WAL is %d bytes after 24 MB committed with the checkpointer held: did a commit checkpoint?", grown)
	}
	if s.ckpt.runs.Load() != 0 || s.ckpt.finishes.Load() != 0 {
		t.Fatalf("%d checkpoints run while held, %d by the writer", s.ckpt.runs.Load(), s.ckpt.finishes.Load())
	}
	close(hold)
	eventually(t, "a background checkpoint", func() bool { return s.ckpt.runs.Load() > 0 })
	// Copied, the WAL starts over: 2 MB more do not make it longer.
	next = commitBytes(t, s, next, 2<<20)
	if after := fileSize(t, wal); after > grown {
		t.Errorf("WAL grew from %d to %d bytes after the checkpoint: it did not start over", grown, after)
	}
	if s.ckpt.finishes.Load() != 0 || s.ckpt.truncates.Load() != 0 {
		t.Errorf("%d checkpoints by the writer, %d truncating, want none yet", s.ckpt.finishes.Load(), s.ckpt.truncates.Load())
	}
	// Steady commits, 40 MB, finishing every 4 MB: the writer finishes
	// checkpoints and the WAL stays within walHardBytes and what one
	// commit adds (a finish waits while the checkpointer runs, and a
	// slow one lets the WAL grow: the truncating checkpoint bounds it).
	// The WAL is already longer: Close removes it.
	walFinishBytes, walHardBytes = 4<<20, 16<<20
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	next = commitBytes(t, s, next, 40<<20)
	if s.ckpt.finishes.Load() == 0 {
		t.Error("the writer finished no checkpoint in 40 MB")
	}
	if after, limit := fileSize(t, wal), walHardBytes+2<<20; after > limit {
		t.Errorf("WAL is %d bytes after 40 MB, want at most %d", after, limit)
	}
	// Close stops the checkpointer and leaves a checkpointed file without
	// a WAL.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wal); !os.IsNotExist(err) {
		t.Errorf("WAL still there after Close: %v", err)
	}
	s = open(t, path)
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n != next {
		t.Errorf("deliveries after reopen = %d (%v), want %d", n, err, next)
	}
}

// TestStore_WALBoundedByReader: a read transaction held open keeps the WAL
// from starting over; past walHardBytes the writer waits for it to end
// rather than let the WAL grow, and the WAL is emptied when it ends.
func TestStore_WALBoundedByReader(t *testing.T) {
	soft, finish, hard := walSoftBytes, walFinishBytes, walHardBytes
	walSoftBytes, walFinishBytes, walHardBytes = 256<<10, 1<<20, 2<<20
	t.Cleanup(func() { walSoftBytes, walFinishBytes, walHardBytes = soft, finish, hard })
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	next := commitBytes(t, s, 0, 1<<20)
	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rtx, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("reader: %d deliveries, %v", n, err)
	}
	done := make(chan int)
	go func() { done <- commitBytes(t, s, next, 12<<20) }()
	wal := path + "-wal"
	eventually(t, "a checkpoint waiting for the reader", s.ckpt.waiting.Load)
	// Bounded: the hard limit, plus what was written before the limit
	// was noticed (one commit) and the pages of the reader's snapshot.
	held := fileSize(t, wal)
	if limit := walHardBytes + 2<<20; held > limit {
		t.Errorf("WAL is %d bytes with the reader held, want at most %d", held, limit)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	next = <-done
	if s.ckpt.truncates.Load() == 0 {
		t.Error("no truncating checkpoint ran")
	}
	if after := fileSize(t, wal); after > walHardBytes+2<<20 {
		t.Errorf("WAL is %d bytes after the reader ended and 12 MB more were committed, want at most %d", after, walHardBytes+2<<20)
	}
	if err := s.r.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n != next {
		t.Errorf("deliveries = %d (%v), want %d", n, err, next)
	}
}
