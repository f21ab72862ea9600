package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// shared holds the statements both stores run (dispatch/storesql), for
// this schema's tables.
var shared = storesql.New(storesql.Tables{Deliveries: "rowhook_deliveries", Attempts: "rowhook_attempts",
	Subscriptions: "rowhook_subscriptions", WebhookState: "rowhook_webhook_state", Change: "change_json"})

func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]dispatch.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, tag+query, args...)
	if err != nil {
		return nil, classify(err)
	}
	out, err := storesql.ScanDeliveries(rows)
	return out, classify(err)
}

// Pending implements dispatch.Store.
func (s *Store) Pending(ctx context.Context, q dispatch.PendingQuery) ([]dispatch.Delivery, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []dispatch.Delivery
	var err error
	if q.DueBy.IsZero() {
		out, err = s.queryDeliveries(ctx, shared.SelectDeliveries+` FORCE INDEX (deliveries_order)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' ORDER BY seq LIMIT ?`, q.Webhook, q.Subscription, limit)
	} else if q.AfterSeq != 0 {
		after := storesql.Nanos(q.AfterNextAt)
		out, err = s.queryDeliveries(ctx, shared.SelectDeliveries+` FORCE INDEX (deliveries_due)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' AND next_at <= ?
			AND next_at >= ? AND (next_at > ? OR seq > ?) ORDER BY next_at, seq LIMIT ?`,
			q.Webhook, q.Subscription, storesql.Nanos(q.DueBy), after, after, q.AfterSeq, limit)
	} else {
		out, err = s.queryDeliveries(ctx, shared.SelectDeliveries+` FORCE INDEX (deliveries_due)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' AND next_at <= ? ORDER BY next_at, seq LIMIT ?`,
			q.Webhook, q.Subscription, storesql.Nanos(q.DueBy), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read pending deliveries of %s: %w", storesql.QueueName(q.Webhook, q.Subscription), err)
	}
	return out, nil
}

// NextDue implements dispatch.Store.
func (s *Store) NextDue(ctx context.Context, webhook, subscription string, after time.Time) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, tag+`SELECT MIN(next_at) FROM rowhook_deliveries
		WHERE webhook = ? AND subscription = ? AND status = 'pending' AND next_at > ?`, webhook, subscription, storesql.Nanos(after)).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due of %s: %w", storesql.QueueName(webhook, subscription), classify(err))
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64).UTC(), true, nil
}

const attemptCols = `(delivery_id, n, kind, at, duration_us, method, url, request_headers, request_body, status,
	response_headers, response_body, error, note)`

const nAttemptCols = 14

func attemptArgs(a *dispatch.Attempt) ([]any, error) {
	reqH, err := storesql.JSONText(a.RequestHeaders)
	if err != nil {
		return nil, err
	}
	respH, err := storesql.JSONText(a.ResponseHeaders)
	if err != nil {
		return nil, err
	}
	kind := a.Kind
	if kind == "" {
		kind = dispatch.KindAttempt
	}
	var reqB, respB any
	if a.RequestBody != nil {
		reqB = a.RequestBody
	}
	if a.ResponseBody != nil {
		respB = a.ResponseBody
	}
	return []any{a.DeliveryID, a.N, kind, storesql.Nanos(a.At), a.Duration.Microseconds(), a.Method, a.URL, reqH, reqB, a.Status,
		respH, respB, a.Error, a.Note}, nil
}

// insertAttempts appends log entries with multi-row statements.
func insertAttempts(ctx context.Context, tx *sql.Tx, as []*dispatch.Attempt) error {
	args := make([]any, 0, nAttemptCols*min(len(as), maxRows))
	rows, size := 0, 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, tag+`INSERT INTO rowhook_attempts `+attemptCols+` VALUES `+placeholders(rows, nAttemptCols), args...)
		args, rows, size = args[:0], 0, 0
		return err
	}
	for _, a := range as {
		aa, err := attemptArgs(a)
		if err != nil {
			return fmt.Errorf("attempt of %s: %w", a.DeliveryID, err)
		}
		args = append(args, aa...)
		rows++
		size += len(a.RequestBody) + len(a.ResponseBody) + len(a.URL) + 512
		if rows >= maxRows || size >= maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Record implements dispatch.Store. A batch costs a handful of round
// trips whatever its size: one multi-row INSERT for the log and one
// multi-table UPDATE for the deliveries per maxRows results, in one
// transaction (one fsync at COMMIT). One UPDATE per result made the
// recorder, and so the dispatcher, wait for a round trip per delivery.
func (s *Store) Record(ctx context.Context, rs []dispatch.Result) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record attempts: %w", classify(err))
	}
	defer tx.Rollback()
	as := make([]*dispatch.Attempt, len(rs))
	for i := range rs {
		as[i] = &rs[i].Attempt
	}
	if err := insertAttempts(ctx, tx, as); err != nil {
		return fmt.Errorf("record attempts: %w", classify(err))
	}
	if err := updateResults(ctx, tx, rs); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempts: %w", classify(err))
	}
	return nil
}

// resultCols are the columns of the derived table updateResults joins:
// the delivery (seq and id), its new state, and wb = 1 when writeback is
// to be pending with resp.
const resultCols = 10

// updateResults sets each result's delivery state with one UPDATE … JOIN
// per maxRows results. The join goes by seq, the primary key (the
// dispatcher passes it as Attempt.DeliverySeq; one indexed SELECT finds
// the others), and checks the id too: a delivery that is gone is left
// alone, as a one-row UPDATE matching nothing would. Where a delivery has
// several results in rs, the last one decides, as one UPDATE per result
// in order would.
func updateResults(ctx context.Context, tx *sql.Tx, rs []dispatch.Result) error {
	last := make(map[string]int, len(rs))
	var noSeq []string
	for i := range rs {
		id := rs[i].Attempt.DeliveryID
		if _, dup := last[id]; !dup && rs[i].Attempt.DeliverySeq == 0 {
			noSeq = append(noSeq, id)
		}
		last[id] = i
	}
	seqs, err := lookupSeqs(ctx, tx, noSeq)
	if err != nil {
		return err
	}
	args := make([]any, 0, resultCols*min(len(last), maxRows))
	rows, size := 0, 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString(tag + `UPDATE rowhook_deliveries d JOIN (SELECT ? AS seq, ? AS id, ? AS status, ? AS attempts, ? AS next_at,
			? AS updated_at, ? AS last_status, ? AS last_error, ? AS wb, ? AS resp`)
		for i := 1; i < rows; i++ {
			q.WriteString(` UNION ALL SELECT ?,?,?,?,?,?,?,?,?,?`)
		}
		// The COLLATE makes resp's collation that of the column, so that
		// CASE does not mix two implicit collations (error 1267).
		q.WriteString(`) v ON d.seq = v.seq AND d.id = v.id
			SET d.status = v.status, d.attempts = v.attempts, d.next_at = v.next_at, d.updated_at = v.updated_at,
			d.last_status = v.last_status, d.last_error = v.last_error,
			d.writeback = CASE WHEN v.wb = 1 THEN 'pending' ELSE d.writeback END,
			d.response = CASE WHEN v.wb = 1 THEN CONVERT(v.resp USING utf8mb4) COLLATE utf8mb4_bin ELSE d.response END`)
		_, err := tx.ExecContext(ctx, q.String(), args...)
		args, rows, size = args[:0], 0, 0
		return classify(err)
	}
	for i := range rs {
		r := &rs[i]
		id := r.Attempt.DeliveryID
		if last[id] != i {
			continue
		}
		seq := r.Attempt.DeliverySeq
		if seq == 0 {
			if seq = seqs[id]; seq == 0 {
				continue // no such delivery
			}
		}
		var resp any
		wb := 0
		if r.Writeback != nil {
			if resp, err = storesql.JSONText(r.Writeback); err != nil {
				return fmt.Errorf("result of %s: %w", id, err)
			}
			wb = 1
		}
		args = append(args, seq, id, string(r.Status), r.Attempts, storesql.Nanos(r.NextAt),
			storesql.Nanos(r.Attempt.At.Add(r.Attempt.Duration)), r.Attempt.Status, r.Attempt.Error, wb, resp)
		rows++
		size += len(r.Attempt.Error) + 256
		if r.Writeback != nil {
			size += len(r.Writeback.Body) * 2
		}
		if rows >= maxRows || size >= maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// lookupSeqs returns the seq of each delivery id that exists.
func lookupSeqs(ctx context.Context, tx *sql.Tx, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	for start := 0; start < len(ids); start += maxRows {
		chunk := ids[start:min(start+maxRows, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, tag+`SELECT id, seq FROM rowhook_deliveries WHERE id IN `+inList(len(chunk)), args...)
		if err != nil {
			return nil, classify(err)
		}
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, classify(err)
			}
			out[id] = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, classify(err)
		}
	}
	return out, nil
}

// Writebacks implements dispatch.Store.
func (s *Store) Writebacks(ctx context.Context, limit int) ([]dispatch.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.queryDeliveries(ctx, shared.Writebacks, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending writebacks: %w", err)
	}
	return out, nil
}

// FinishWriteback implements dispatch.Store.
func (s *Store) FinishWriteback(ctx context.Context, id, status, errMsg string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, classify(err))
	}
	defer tx.Rollback()
	// Rows matched, not changed, decides "not found": a repeated status
	// changes nothing but the delivery exists.
	var one int
	err = tx.QueryRowContext(ctx, tag+`SELECT 1 FROM rowhook_deliveries WHERE id = ? FOR UPDATE`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("finish writeback of %s: %w", id, dispatch.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, classify(err))
	}
	if _, err := tx.ExecContext(ctx, tag+shared.FinishWriteback, status, errMsg, id); err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, classify(err))
	}
	note := &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindWriteback, At: at, Error: errMsg, Note: "writeback " + status}
	if err := insertAttempts(ctx, tx, []*dispatch.Attempt{note}); err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, classify(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, classify(err))
	}
	return nil
}

// List implements dispatch.Store.
func (s *Store) List(ctx context.Context, f dispatch.Filter) ([]dispatch.Delivery, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := storesql.FilterWhere(f)
	out, err := s.queryDeliveries(ctx, shared.SelectDeliveries+where+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Get implements dispatch.Store.
func (s *Store) Get(ctx context.Context, id string) (dispatch.Delivery, []dispatch.Attempt, error) {
	d, err := storesql.ScanDelivery(s.db.QueryRowContext(ctx, tag+shared.Get, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil, fmt.Errorf("get delivery %s: %w", id, dispatch.ErrNotFound)
	}
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s: %w", id, classify(err))
	}
	rows, err := s.db.QueryContext(ctx, tag+shared.SelectAttempts+` WHERE delivery_id = ? ORDER BY at, id`, id)
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, classify(err))
	}
	out, err := storesql.ScanAttempts(rows, id)
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, classify(err))
	}
	return d, out, nil
}

// Redeliver implements dispatch.Store.
func (s *Store) Redeliver(ctx context.Context, ids []string, f dispatch.Filter, now time.Time, actor string) ([]string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("redeliver: %w", classify(err))
	}
	defer tx.Rollback()
	status := map[string]string{}
	scan := func(rows *sql.Rows, err error, order bool) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				return err
			}
			status[id] = st
			if order {
				ids = append(ids, id)
			}
		}
		return rows.Err()
	}
	if len(ids) == 0 {
		where, args := storesql.FilterWhere(f)
		rows, err := tx.QueryContext(ctx, tag+`SELECT id, status FROM rowhook_deliveries`+where+` AND status != 'pending' ORDER BY seq FOR UPDATE`, args...)
		if err := scan(rows, err, true); err != nil {
			return nil, fmt.Errorf("redeliver: %w", classify(err))
		}
	} else {
		for start := 0; start < len(ids); start += maxRows {
			chunk := ids[start:min(start+maxRows, len(ids))]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			rows, err := tx.QueryContext(ctx, tag+`SELECT id, status FROM rowhook_deliveries WHERE id IN `+inList(len(chunk))+` FOR UPDATE`, args...)
			if err := scan(rows, err, false); err != nil {
				return nil, fmt.Errorf("redeliver: %w", classify(err))
			}
		}
	}
	var done []string
	var notes []*dispatch.Attempt
	queued := map[string]bool{}
	for _, id := range ids {
		st, ok := status[id]
		if !ok {
			return nil, fmt.Errorf("redeliver %s: %w", id, dispatch.ErrNotFound)
		}
		if st == string(dispatch.StatusPending) || queued[id] {
			continue
		}
		queued[id] = true
		done = append(done, id)
		notes = append(notes, &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindRedeliver, At: now,
			Note: dispatch.RedeliverNote(actor, dispatch.Status(st), now)})
	}
	for start := 0; start < len(done); start += maxRows {
		chunk := done[start:min(start+maxRows, len(done))]
		args := []any{storesql.Nanos(now), storesql.Nanos(now)}
		for _, id := range chunk {
			args = append(args, id)
		}
		if _, err := tx.ExecContext(ctx, tag+`UPDATE rowhook_deliveries `+shared.RedeliverSet+` WHERE id IN `+inList(len(chunk)), args...); err != nil {
			return nil, fmt.Errorf("redeliver: %w", classify(err))
		}
	}
	if err := insertAttempts(ctx, tx, notes); err != nil {
		return nil, fmt.Errorf("redeliver: %w", classify(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("redeliver: %w", classify(err))
	}
	return done, nil
}

// Rerender implements dispatch.Store.
func (s *Store) Rerender(ctx context.Context, id string, req dispatch.RenderedRequest, now time.Time, actor string) error {
	args, err := storesql.RerenderArgs(req, now)
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, classify(err))
	}
	defer tx.Rollback()
	var status string
	err = tx.QueryRowContext(ctx, tag+`SELECT status FROM rowhook_deliveries WHERE id = ? FOR UPDATE`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("re-render %s: %w", id, dispatch.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, classify(err))
	}
	if status == string(dispatch.StatusPending) {
		return fmt.Errorf("re-render %s: %w", id, dispatch.ErrPending)
	}
	if _, err := tx.ExecContext(ctx, tag+`UPDATE rowhook_deliveries `+shared.RerenderSet+` WHERE id = ?`, append(args, id)...); err != nil {
		return fmt.Errorf("re-render %s: %w", id, classify(err))
	}
	note := &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindRedeliver, At: now,
		Note: dispatch.RerenderNote(actor, req.From, dispatch.Status(status), now)}
	if err := insertAttempts(ctx, tx, []*dispatch.Attempt{note}); err != nil {
		return fmt.Errorf("re-render %s: %w", id, classify(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("re-render %s: %w", id, classify(err))
	}
	return nil
}

// Fail implements dispatch.Store.
func (s *Store) Fail(ctx context.Context, webhook, subscription, reason string, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, tag+shared.Fail, reason, storesql.Nanos(now), webhook, subscription)
	if err != nil {
		return 0, fmt.Errorf("fail deliveries of %s: %w", storesql.QueueName(webhook, subscription), classify(err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// AddSubscription implements dispatch.Store.
func (s *Store) AddSubscription(ctx context.Context, sub dispatch.Subscription) error {
	if _, err := s.db.ExecContext(ctx, tag+shared.AddSubscription,
		sub.ID, sub.URL, sub.Event, storesql.Nanos(sub.CreatedAt)); err != nil {
		return fmt.Errorf("add subscription %s: %w", sub.ID, classify(err))
	}
	return nil
}

// DeleteSubscription implements dispatch.Store.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, tag+shared.DeleteSubscription, id)
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, classify(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete subscription %s: %w", id, dispatch.ErrNotFound)
	}
	return nil
}

// Subscriptions implements dispatch.Store.
func (s *Store) Subscriptions(ctx context.Context) ([]dispatch.Subscription, error) {
	rows, err := s.db.QueryContext(ctx, tag+shared.Subscriptions)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", classify(err))
	}
	out, err := storesql.ScanSubscriptions(rows)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", classify(err))
	}
	return out, nil
}

// SetWebhookDisabled implements dispatch.Store.
func (s *Store) SetWebhookDisabled(ctx context.Context, webhook, reason string, at time.Time) error {
	var err error
	if reason == "" {
		_, err = s.db.ExecContext(ctx, tag+shared.EnableWebhook, webhook)
	} else {
		_, err = s.db.ExecContext(ctx, tag+`INSERT INTO rowhook_webhook_state (webhook, disabled_reason, at) VALUES (?,?,?)
			ON DUPLICATE KEY UPDATE disabled_reason = VALUES(disabled_reason), at = VALUES(at)`, webhook, reason, storesql.Nanos(at))
	}
	if err != nil {
		return fmt.Errorf("set webhook %s state: %w", webhook, classify(err))
	}
	return nil
}

// DisabledWebhooks implements dispatch.Store.
func (s *Store) DisabledWebhooks(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, tag+shared.DisabledWebhooks)
	if err != nil {
		return nil, fmt.Errorf("read webhook state: %w", classify(err))
	}
	out, err := storesql.ScanDisabledWebhooks(rows)
	if err != nil {
		return nil, fmt.Errorf("read webhook state: %w", classify(err))
	}
	return out, nil
}

// Stats implements dispatch.Store.
func (s *Store) Stats(ctx context.Context) ([]dispatch.QueueStat, error) {
	rows, err := s.db.QueryContext(ctx, tag+shared.Stats)
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", classify(err))
	}
	out, err := storesql.ScanStats(rows)
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", classify(err))
	}
	return out, nil
}

// pruneBatch bounds each prune transaction, so retention never holds
// InnoDB locks on the outbox for long.
const pruneBatch = 1000

// Prune implements dispatch.Store. It deletes in batches of pruneBatch
// deliveries, each batch (deliveries and their log) in one transaction.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		n, err := s.pruneOnce(ctx, cutoff)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune delivery log: %w", classify(err))
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

func (s *Store) pruneOnce(ctx context.Context, cutoff time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// created_at (indexed) narrows the scan: a delivery updated before the
	// cutoff was created before it too.
	rows, err := tx.QueryContext(ctx, tag+`SELECT id FROM rowhook_deliveries
		WHERE created_at < ? AND updated_at < ? AND status IN ('ok', 'failed', 'dead') AND writeback != 'pending'
		ORDER BY created_at LIMIT ? FOR UPDATE`, storesql.Nanos(cutoff), storesql.Nanos(cutoff), pruneBatch)
	if err != nil {
		return 0, err
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, tag+`DELETE FROM rowhook_attempts WHERE delivery_id IN `+inList(len(ids)), ids...); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, tag+`DELETE FROM rowhook_deliveries WHERE id IN `+inList(len(ids)), ids...)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
