package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
	"github.com/rowhook/rowhook/internal/jsonx"
)

// Record writes a batch of results with multi-row statements: its
// attempts with INSERTs of up to recordChunk rows, its deliveries' new
// states with UPDATE … FROM (VALUES …) of up to recordChunk rows, where a
// batch of 62 results (the recorder's, under load) took 124 statements.
// The statements of 2^k rows, k ≤ 6, are prepared at open; a batch is
// written with as many as the binary digits of its size take (62 = 32 +
// 16 + 8 + 4 + 2), without preparing a statement for each size.
//
// The driver copies every text or blob parameter to the C heap and frees
// it after the statement, so the common values go as integers or NULL:
// the status as its number (statusCodes), an empty error or note and the
// kind "attempt" as NULL (coalesce stores what they stand for), and a
// chunk without a writeback (almost all) uses a statement that leaves the
// writeback columns alone instead of binding their empty values.
const (
	recordChunkBits = 6
	recordChunk     = 1 << recordChunkBits
	// attemptCols is the number of parameters per attempt.
	attemptCols = 15
)

// attemptRow is one attempt's VALUES row: kind, error and note are NULL
// for their usual values (attemptArgs).
const attemptRow = "(?,?,?,coalesce(?,'" + dispatch.KindAttempt + "'),?,?,?,?,?,?,?,?,?,coalesce(?,''),coalesce(?,''))"

// statusCodes number the statuses a result sets; statusExpr turns the
// number back into the text (any other status is bound as text and
// stored as it is).
var statusCodes = map[dispatch.Status]int64{dispatch.StatusPending: 1, dispatch.StatusOK: 2, dispatch.StatusFailed: 3, dispatch.StatusDead: 4}

func statusExpr(col string) string {
	var b strings.Builder
	b.WriteString("CASE " + col)
	for _, st := range []dispatch.Status{dispatch.StatusPending, dispatch.StatusOK, dispatch.StatusFailed, dispatch.StatusDead} {
		fmt.Fprintf(&b, " WHEN %d THEN '%s'", statusCodes[st], st)
	}
	b.WriteString(" ELSE " + col + " END")
	return b.String()
}

// resultExprs are RecordSet's parameters, in order, as expressions of
// the UPDATE's VALUES (r): the delivery's seq is r.k; wb is the writeback
// parameter, named thrice.
var resultExprs = []string{statusExpr("r.st"), "r.n", "r.nx", "r.up", "r.ls", "coalesce(r.le,'')", "r.wb", "r.wb", "r.wb", "r.resp"}

// distinctResultCols is the number of columns of r: k and the distinct
// parameters of RecordSet.
const distinctResultCols = 9

// plainResultCols is the number of columns of r without a writeback:
// k, st, n, nx, up, ls, le.
const plainResultCols = 7

// prepareRecord prepares the statements of 1, 2, 4 … recordChunk rows.
func (s *Store) prepareRecord() error {
	set := withParams(shared.RecordSet, resultExprs)
	// RecordSet with an empty writeback, which leaves writeback and
	// response as they are.
	plainSet := `SET status = ` + resultExprs[0] + `, attempts = r.n, next_at = r.nx, updated_at = r.up,
		last_status = r.ls, last_error = ` + resultExprs[5]
	for k := range recordChunkBits + 1 {
		n := 1 << k
		var err error
		s.insAttempts[k], err = s.w.Prepare(`INSERT INTO attempts (delivery_id, delivery_seq, n, kind, at, duration_us, method, url,
			request_headers, request_body, status, response_headers, response_body, error, note)
			VALUES ` + strings.TrimSuffix(strings.Repeat(attemptRow+",", n), ","))
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
		s.updPlain[k], err = s.w.Prepare(`WITH r(k, st, n, nx, up, ls, le) AS (VALUES ` + rows(n, plainResultCols) + `)
			UPDATE deliveries ` + plainSet + ` FROM r WHERE deliveries.seq = r.k`)
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

// withParams is q with its parameters, in order, replaced by exprs.
func withParams(q string, exprs []string) string {
	parts := strings.Split(q, "?")
	if len(parts) != len(exprs)+1 {
		panic(fmt.Sprintf("sqlitestore: %d parameters in %s, want %d", len(parts)-1, q, len(exprs)))
	}
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(p)
		if i < len(exprs) {
			b.WriteString(exprs[i])
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
		if errors.Is(err, sql.ErrNoRows) && s.segments {
			// A delivery handed to its queue from memory by its commit
			// may still be in its segment.
			expanded, xerr := s.expandHolding(ctx, tx, rs[i].Attempt.DeliveryID)
			if xerr != nil {
				return fmt.Errorf("record attempt of %s: %w", rs[i].Attempt.DeliveryID, xerr)
			}
			if expanded {
				err = lookup.QueryRowContext(ctx, rs[i].Attempt.DeliveryID).Scan(&seqs[i])
			}
		}
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

// insertAttempts logs the attempts of rs, in order. The headers of a
// chunk's attempts are written as JSON into one buffer, made one string
// (each row's are a part of it).
func (s *Store) insertAttempts(ctx context.Context, tx *sql.Tx, rs []dispatch.Result, seqs []int64) error {
	args := make([]any, 0, attemptCols*min(len(rs), recordChunk))
	// Room for a chunk of typical headers (request and response: ~500
	// bytes of JSON), so that it does not grow row by row.
	buf := make([]byte, 0, 512*min(len(rs), recordChunk))
	ends := make([]int, 0, 2*min(len(rs), recordChunk))
	i := 0
	return chunks(len(rs), func(k, size int) error {
		args, buf, ends = args[:0], buf[:0], ends[:0]
		for j := i; j < i+size; j++ {
			buf = appendHeaders(buf, rs[j].Attempt.RequestHeaders)
			ends = append(ends, len(buf))
			buf = appendHeaders(buf, rs[j].Attempt.ResponseHeaders)
			ends = append(ends, len(buf))
		}
		text := string(buf)
		headers := func(h map[string][]string, at int) any {
			if h == nil {
				return nil
			}
			start := 0
			if at > 0 {
				start = ends[at-1]
			}
			return text[start:ends[at]]
		}
		for j := i; j < i+size; j++ {
			a := &rs[j].Attempt
			var kind any
			if a.Kind != "" && a.Kind != dispatch.KindAttempt {
				kind = a.Kind
			}
			var seq any
			if seqs[j] != 0 {
				seq = seqs[j]
			}
			h := 2 * (j - i)
			args = append(args, a.DeliveryID, seq, a.N, kind, storesql.Nanos(a.At), a.Duration.Microseconds(),
				a.Method, a.URL, headers(a.RequestHeaders, h), a.RequestBody, a.Status, headers(a.ResponseHeaders, h+1),
				a.ResponseBody, nonEmpty(a.Error), nonEmpty(a.Note))
		}
		if _, err := tx.StmtContext(ctx, s.insAttempts[k]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("record attempts of %s to %s: %w", rs[i].Attempt.DeliveryID, rs[i+size-1].Attempt.DeliveryID, err)
		}
		i += size
		return nil
	})
}

// appendHeaders appends h as headersJSON writes it (nothing for nil).
func appendHeaders(buf []byte, h map[string][]string) []byte {
	if h == nil {
		return buf
	}
	return jsonx.AppendHeaders(buf, h)
}

// nonEmpty is s, or NULL for "" (the statement's coalesce stores the
// empty string).
func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// statusArg is st as its number in statusCodes, or as text.
func statusArg(st dispatch.Status) any {
	if c, ok := statusCodes[st]; ok {
		return c
	}
	return string(st)
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
		plain := true
		for _, u := range us[i : i+size] {
			plain = plain && u.wb < 0
		}
		for _, u := range us[i : i+size] {
			r := &rs[u.last]
			args = append(args, u.seq, statusArg(r.Status), r.Attempts, storesql.Nanos(r.NextAt),
				storesql.Nanos(r.Attempt.At.Add(r.Attempt.Duration)), r.Attempt.Status, nonEmpty(r.Attempt.Error))
			if plain {
				continue
			}
			var resp any
			wb := ""
			if u.wb >= 0 {
				var err error
				if resp, err = storesql.JSONText(rs[u.wb].Writeback); err != nil {
					return fmt.Errorf("record attempt of %s: %w", rs[u.wb].Attempt.DeliveryID, err)
				}
				wb = dispatch.WritebackPending
			}
			args = append(args, wb, resp)
		}
		stmt := s.updResults[k]
		if plain {
			stmt = s.updPlain[k]
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("record results of %s to %s: %w", rs[us[i].last].Attempt.DeliveryID, rs[us[i+size-1].last].Attempt.DeliveryID, err)
		}
		i += size
		return nil
	})
}
