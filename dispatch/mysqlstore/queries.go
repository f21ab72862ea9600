package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

const deliveryCols = `seq, id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, body, change_json, event_time, created_at, next_at, updated_at, status, attempts, last_status, last_error,
	redelivered, writeback, writeback_error, response`

type scanner interface{ Scan(...any) error }

func scanDelivery(sc scanner) (dispatch.Delivery, error) {
	var d dispatch.Delivery
	var headers, change, response sql.NullString
	var eventTime, created, next, updated int64
	var status string
	err := sc.Scan(&d.Seq, &d.ID, &d.EventID, &d.Rule, &d.Event, &d.Webhook, &d.Subscription, &d.Key, &d.Method,
		&d.URL, &d.ContentType, &headers, &d.Body, &change, &eventTime, &created, &next, &updated, &status,
		&d.Attempts, &d.LastStatus, &d.LastError, &d.Redelivered, &d.Writeback, &d.WritebackError, &response)
	if err != nil {
		return d, err
	}
	d.Status = dispatch.Status(status)
	d.EventTime, d.CreatedAt, d.NextAt, d.UpdatedAt = fromNanos(eventTime), fromNanos(created), fromNanos(next), fromNanos(updated)
	if headers.Valid {
		if err := unmarshal(headers.String, &d.Headers); err != nil {
			return d, fmt.Errorf("delivery %s headers: %w", d.ID, err)
		}
	}
	if change.Valid {
		d.Change = []byte(change.String)
	}
	if response.Valid {
		d.Response = new(dispatch.Response)
		if err := unmarshal(response.String, d.Response); err != nil {
			return d, fmt.Errorf("delivery %s response: %w", d.ID, err)
		}
	}
	return d, nil
}

func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]dispatch.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, tag+query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []dispatch.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, d)
	}
	return out, classify(rows.Err())
}

func queueName(webhook, sub string) string {
	if sub != "" {
		return webhook + " " + sub
	}
	return webhook
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
		out, err = s.queryDeliveries(ctx, `SELECT `+deliveryCols+` FROM rowhook_deliveries FORCE INDEX (deliveries_order)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' ORDER BY seq LIMIT ?`, q.Webhook, q.Subscription, limit)
	} else if q.AfterSeq != 0 {
		after := nanos(q.AfterNextAt)
		out, err = s.queryDeliveries(ctx, `SELECT `+deliveryCols+` FROM rowhook_deliveries FORCE INDEX (deliveries_due)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' AND next_at <= ?
			AND next_at >= ? AND (next_at > ? OR seq > ?) ORDER BY next_at, seq LIMIT ?`,
			q.Webhook, q.Subscription, nanos(q.DueBy), after, after, q.AfterSeq, limit)
	} else {
		out, err = s.queryDeliveries(ctx, `SELECT `+deliveryCols+` FROM rowhook_deliveries FORCE INDEX (deliveries_due)
			WHERE webhook = ? AND subscription = ? AND status = 'pending' AND next_at <= ? ORDER BY next_at, seq LIMIT ?`,
			q.Webhook, q.Subscription, nanos(q.DueBy), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read pending deliveries of %s: %w", queueName(q.Webhook, q.Subscription), err)
	}
	return out, nil
}

// NextDue implements dispatch.Store.
func (s *Store) NextDue(ctx context.Context, webhook, subscription string) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, tag+`SELECT MIN(next_at) FROM rowhook_deliveries
		WHERE webhook = ? AND subscription = ? AND status = 'pending'`, webhook, subscription).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due of %s: %w", queueName(webhook, subscription), classify(err))
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
	reqH, err := jsonText(a.RequestHeaders)
	if err != nil {
		return nil, err
	}
	respH, err := jsonText(a.ResponseHeaders)
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
	return []any{a.DeliveryID, a.N, kind, nanos(a.At), a.Duration.Microseconds(), a.Method, a.URL, reqH, reqB, a.Status,
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

// Record implements dispatch.Store.
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
	for i := range rs {
		r := &rs[i]
		var resp any
		wb := ""
		if r.Writeback != nil {
			if resp, err = jsonText(r.Writeback); err != nil {
				return fmt.Errorf("record attempt of %s: %w", r.Attempt.DeliveryID, err)
			}
			wb = dispatch.WritebackPending
		}
		_, err := tx.ExecContext(ctx, tag+`UPDATE rowhook_deliveries SET status = ?, attempts = ?, next_at = ?, updated_at = ?,
			last_status = ?, last_error = ?,
			writeback = CASE WHEN ? != '' THEN ? ELSE writeback END,
			response = CASE WHEN ? != '' THEN ? ELSE response END
			WHERE id = ?`, string(r.Status), r.Attempts, nanos(r.NextAt), nanos(r.Attempt.At.Add(r.Attempt.Duration)),
			r.Attempt.Status, r.Attempt.Error, wb, wb, wb, resp, r.Attempt.DeliveryID)
		if err != nil {
			return fmt.Errorf("record attempt of %s: %w", r.Attempt.DeliveryID, classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempts: %w", classify(err))
	}
	return nil
}

// Writebacks implements dispatch.Store.
func (s *Store) Writebacks(ctx context.Context, limit int) ([]dispatch.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryCols+` FROM rowhook_deliveries WHERE writeback = 'pending' ORDER BY seq LIMIT ?`, limit)
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
	if _, err := tx.ExecContext(ctx, tag+`UPDATE rowhook_deliveries SET writeback = ?, writeback_error = ? WHERE id = ?`, status, errMsg, id); err != nil {
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

func filterWhere(f dispatch.Filter) (string, []any) {
	conds := []string{"1=1"}
	var args []any
	if f.Webhook != "" {
		conds = append(conds, "webhook = ?")
		args = append(args, f.Webhook)
	}
	if f.Subscription != "" {
		conds = append(conds, "subscription = ?")
		args = append(args, f.Subscription)
	}
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(f.Status))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "created_at >= ?")
		args = append(args, nanos(f.Since))
	}
	if f.AfterSeq > 0 {
		conds = append(conds, "seq < ?")
		args = append(args, f.AfterSeq)
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List implements dispatch.Store.
func (s *Store) List(ctx context.Context, f dispatch.Filter) ([]dispatch.Delivery, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := filterWhere(f)
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryCols+` FROM rowhook_deliveries`+where+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Get implements dispatch.Store.
func (s *Store) Get(ctx context.Context, id string) (dispatch.Delivery, []dispatch.Attempt, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, tag+`SELECT `+deliveryCols+` FROM rowhook_deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil, fmt.Errorf("get delivery %s: %w", id, dispatch.ErrNotFound)
	}
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s: %w", id, classify(err))
	}
	rows, err := s.db.QueryContext(ctx, tag+`SELECT n, kind, at, duration_us, method, url, request_headers, request_body,
		status, response_headers, response_body, error, note FROM rowhook_attempts WHERE delivery_id = ? ORDER BY at, id`, id)
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, classify(err))
	}
	defer rows.Close()
	var out []dispatch.Attempt
	for rows.Next() {
		a := dispatch.Attempt{DeliveryID: id}
		var at, dur int64
		var reqH, respH sql.NullString
		if err := rows.Scan(&a.N, &a.Kind, &at, &dur, &a.Method, &a.URL, &reqH, &a.RequestBody, &a.Status, &respH,
			&a.ResponseBody, &a.Error, &a.Note); err != nil {
			return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, classify(err))
		}
		a.At = fromNanos(at)
		a.Duration = time.Duration(dur) * time.Microsecond
		if reqH.Valid {
			_ = unmarshal(reqH.String, &a.RequestHeaders)
		}
		if respH.Valid {
			_ = unmarshal(respH.String, &a.ResponseHeaders)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
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
		where, args := filterWhere(f)
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
			Note: fmt.Sprintf("redelivered by %s (was %s)", actor, st)})
	}
	for start := 0; start < len(done); start += maxRows {
		chunk := done[start:min(start+maxRows, len(done))]
		args := []any{nanos(now), nanos(now)}
		for _, id := range chunk {
			args = append(args, id)
		}
		if _, err := tx.ExecContext(ctx, tag+`UPDATE rowhook_deliveries SET status = 'pending', attempts = 0, next_at = ?,
			updated_at = ?, redelivered = redelivered + 1, last_error = '' WHERE id IN `+inList(len(chunk)), args...); err != nil {
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

// Fail implements dispatch.Store.
func (s *Store) Fail(ctx context.Context, webhook, subscription, reason string, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, tag+`UPDATE rowhook_deliveries SET status = 'failed', last_error = ?, updated_at = ?
		WHERE webhook = ? AND subscription = ? AND status = 'pending'`, reason, nanos(now), webhook, subscription)
	if err != nil {
		return 0, fmt.Errorf("fail deliveries of %s: %w", queueName(webhook, subscription), classify(err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// AddSubscription implements dispatch.Store.
func (s *Store) AddSubscription(ctx context.Context, sub dispatch.Subscription) error {
	if _, err := s.db.ExecContext(ctx, tag+`INSERT INTO rowhook_subscriptions (id, url, event, created_at) VALUES (?,?,?,?)`,
		sub.ID, sub.URL, sub.Event, nanos(sub.CreatedAt)); err != nil {
		return fmt.Errorf("add subscription %s: %w", sub.ID, classify(err))
	}
	return nil
}

// DeleteSubscription implements dispatch.Store.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, tag+`DELETE FROM rowhook_subscriptions WHERE id = ?`, id)
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
	rows, err := s.db.QueryContext(ctx, tag+`SELECT id, url, event, created_at FROM rowhook_subscriptions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", classify(err))
	}
	defer rows.Close()
	var out []dispatch.Subscription
	for rows.Next() {
		var sub dispatch.Subscription
		var at int64
		if err := rows.Scan(&sub.ID, &sub.URL, &sub.Event, &at); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", classify(err))
		}
		sub.CreatedAt = fromNanos(at)
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", classify(err))
	}
	return out, nil
}

// SetWebhookDisabled implements dispatch.Store.
func (s *Store) SetWebhookDisabled(ctx context.Context, webhook, reason string, at time.Time) error {
	var err error
	if reason == "" {
		_, err = s.db.ExecContext(ctx, tag+`DELETE FROM rowhook_webhook_state WHERE webhook = ?`, webhook)
	} else {
		_, err = s.db.ExecContext(ctx, tag+`INSERT INTO rowhook_webhook_state (webhook, disabled_reason, at) VALUES (?,?,?)
			ON DUPLICATE KEY UPDATE disabled_reason = VALUES(disabled_reason), at = VALUES(at)`, webhook, reason, nanos(at))
	}
	if err != nil {
		return fmt.Errorf("set webhook %s state: %w", webhook, classify(err))
	}
	return nil
}

// DisabledWebhooks implements dispatch.Store.
func (s *Store) DisabledWebhooks(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, tag+`SELECT webhook, disabled_reason FROM rowhook_webhook_state`)
	if err != nil {
		return nil, fmt.Errorf("read webhook state: %w", classify(err))
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var w, r string
		if err := rows.Scan(&w, &r); err != nil {
			return nil, fmt.Errorf("read webhook state: %w", classify(err))
		}
		out[w] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read webhook state: %w", classify(err))
	}
	return out, nil
}

// Stats implements dispatch.Store.
func (s *Store) Stats(ctx context.Context) ([]dispatch.QueueStat, error) {
	rows, err := s.db.QueryContext(ctx, tag+`SELECT webhook, status, COUNT(*),
		MIN(CASE WHEN status = 'pending' THEN created_at END) FROM rowhook_deliveries
		WHERE status != 'ok' GROUP BY webhook, status`)
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", classify(err))
	}
	defer rows.Close()
	var out []dispatch.QueueStat
	for rows.Next() {
		var q dispatch.QueueStat
		var status string
		var oldest sql.NullInt64
		if err := rows.Scan(&q.Webhook, &status, &q.Count, &oldest); err != nil {
			return nil, fmt.Errorf("read queue stats: %w", classify(err))
		}
		q.Status = dispatch.Status(status)
		if oldest.Valid {
			q.OldestPending = fromNanos(oldest.Int64)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
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
		ORDER BY created_at LIMIT ? FOR UPDATE`, nanos(cutoff), nanos(cutoff), pruneBatch)
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
