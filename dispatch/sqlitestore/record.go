package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// Record writes a batch of results with multi-row statements: its
// attempts with INSERTs of up to recordChunk rows, its deliveries' new
// states with UPDATE … FROM (VALUES …) of up to recordChunk rows, where a
// batch of 62 results (the recorder's, under load) took 124 statements.
// The statements of 2^k rows, k ≤ 6, are prepared at open; a batch is
// written with as many as the binary digits of its size take (62 = 32 +
// 16 + 8 + 4 + 2), without preparing a statement for each size.
const (
	recordChunkBits = 6
	recordChunk     = 1 << recordChunkBits
	// attemptCols is the number of parameters per attempt.
	attemptCols = 15
)

// resultCols name the values of a result's row in the UPDATE's VALUES:
// the delivery's seq, then RecordSet's parameters in order (wb is its
// writeback parameter, named thrice there).
var resultCols = []string{"k", "st", "n", "nx", "up", "ls", "le", "wb", "wb", "wb", "resp"}

// distinctResultCols is the number of resultCols without the repeated wb.
const distinctResultCols = 9

// prepareRecord prepares the statements of 1, 2, 4 … recordChunk rows.
func (s *Store) prepareRecord() error {
	set := withParams(shared.RecordSet, resultCols[1:])
	for k := range recordChunkBits + 1 {
		n := 1 << k
		var err error
		s.insAttempts[k], err = s.w.Prepare(`INSERT INTO attempts (delivery_id, delivery_seq, n, kind, at, duration_us, method, url,
			request_headers, request_body, status, response_headers, response_body, error, note)
			VALUES ` + rows(n, attemptCols))
		if err != nil {
			return err
		}
		// r names the values (a common table expression); deliveries is
		// found by its primary key for each of them.
		s.updResults[k], err = s.w.Prepare(`WITH r(k, st, n, nx, up, ls, le, wb, resp) AS (VALUES ` + rows(n, distinctResultCols) + `)
			UPDATE deliveries ` + set + ` FROM r WHERE deliveries.seq = r.k`)
		if err != nil {
			return err
		}
	}
	return nil
}

// rows is n rows of cols parameters each, for VALUES.
func rows(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// withParams is q with its parameters, in order, replaced by r's columns
// cols.
func withParams(q string, cols []string) string {
	parts := strings.Split(q, "?")
	if len(parts) != len(cols)+1 {
		panic(fmt.Sprintf("sqlitestore: %d parameters in %s, want %d", len(parts)-1, q, len(cols)))
	}
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(p)
		if i < len(cols) {
			b.WriteString("r." + cols[i])
		}
	}
	return b.String()
}

// chunks calls f with the sizes, powers of two up to recordChunk, that n
// is written in, and their statements' index.
func chunks(n int, f func(k, size int) error) error {
	for n > 0 {
		k := recordChunkBits
		for 1<<k > n {
			k--
		}
		if err := f(k, 1<<k); err != nil {
			return err
		}
		n -= 1 << k
	}
	return nil
}

// Record implements dispatch.Store. Its errors name the state file.
func (s *Store) Record(ctx context.Context, rs []dispatch.Result) error {
	if err := s.record(ctx, rs); err != nil {
		return fmt.Errorf("state %s: %w", s.path, err)
	}
	return nil
}

// record stores rs as one UPDATE and one INSERT per result, in order,
// would: each attempt is logged (in rs's order), with the delivery's seq
// (Attempt.DeliverySeq, else looked up by id; NULL when there is no such
// delivery); the delivery of that seq (none when there is none) takes
// the state of its last result in rs, and the writeback and response of
// its last result with a writeback, if any (RecordSet keeps them
// otherwise).
func (s *Store) record(ctx context.Context, rs []dispatch.Result) error {
	if len(rs) == 0 {
		return nil
	}
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	defer end()
	seqs := make([]int64, len(rs))
	var lookup *sql.Stmt
	for i := range rs {
		if seqs[i] = rs[i].Attempt.DeliverySeq; seqs[i] != 0 {
			continue
		}
		if lookup == nil {
			lookup = tx.StmtContext(ctx, s.selSeq)
		}
		err := lookup.QueryRowContext(ctx, rs[i].Attempt.DeliveryID).Scan(&seqs[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("record attempt of %s: %w", rs[i].Attempt.DeliveryID, err)
		}
	}
	if err := s.insertAttempts(ctx, tx, rs, seqs); err != nil {
		return err
	}
	if err := s.updateResults(ctx, tx, rs, seqs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	return nil
}

// insertAttempts logs the attempts of rs, in order.
func (s *Store) insertAttempts(ctx context.Context, tx *sql.Tx, rs []dispatch.Result, seqs []int64) error {
	args := make([]any, 0, attemptCols*min(len(rs), recordChunk))
	i := 0
	return chunks(len(rs), func(k, size int) error {
		args = args[:0]
		for j := i; j < i+size; j++ {
			a := &rs[j].Attempt
			kind := a.Kind
			if kind == "" {
				kind = dispatch.KindAttempt
			}
			var seq any
			if seqs[j] != 0 {
				seq = seqs[j]
			}
			args = append(args, a.DeliveryID, seq, a.N, kind, storesql.Nanos(a.At), a.Duration.Microseconds(),
				a.Method, a.URL, headersJSON(a.RequestHeaders), a.RequestBody, a.Status, headersJSON(a.ResponseHeaders),
				a.ResponseBody, a.Error, a.Note)
		}
		if _, err := tx.StmtContext(ctx, s.insAttempts[k]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("record attempts of %s to %s: %w", rs[i].Attempt.DeliveryID, rs[i+size-1].Attempt.DeliveryID, err)
		}
		i += size
		return nil
	})
}

// update is a delivery's new state: the index of its last result and of
// its last result with a writeback (-1 when none).
type update struct {
	seq      int64
	last, wb int
}

// updateResults sets the state of the deliveries of rs: one row per
// delivery (UPDATE … FROM joins a row of deliveries to one row of r,
// whichever), merged as one UPDATE per result in order would leave it.
func (s *Store) updateResults(ctx context.Context, tx *sql.Tx, rs []dispatch.Result, seqs []int64) error {
	us := make([]update, 0, len(rs))
	at := make(map[int64]int, len(rs))
	for i := range rs {
		seq := seqs[i]
		if seq == 0 {
			continue // no such delivery
		}
		u, ok := at[seq]
		if !ok {
			u = len(us)
			at[seq] = u
			us = append(us, update{seq: seq, wb: -1})
		}
		us[u].last = i
		if rs[i].Writeback != nil {
			us[u].wb = i
		}
	}
	args := make([]any, 0, distinctResultCols*min(len(us), recordChunk))
	i := 0
	return chunks(len(us), func(k, size int) error {
		args = args[:0]
		for _, u := range us[i : i+size] {
			r := &rs[u.last]
			var resp any
			wb := ""
			if u.wb >= 0 {
				var err error
				if resp, err = storesql.JSONText(rs[u.wb].Writeback); err != nil {
					return fmt.Errorf("record attempt of %s: %w", rs[u.wb].Attempt.DeliveryID, err)
				}
				wb = dispatch.WritebackPending
			}
			args = append(args, u.seq, string(r.Status), r.Attempts, storesql.Nanos(r.NextAt),
				storesql.Nanos(r.Attempt.At.Add(r.Attempt.Duration)), r.Attempt.Status, r.Attempt.Error, wb, resp)
		}
		if _, err := tx.StmtContext(ctx, s.updResults[k]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("record results of %s to %s: %w", rs[us[i].last].Attempt.DeliveryID, rs[us[i+size-1].last].Attempt.DeliveryID, err)
		}
		i += size
		return nil
	})
}
