// Package storesql is the SQL the two state stores (dispatch/sqlitestore
// and dispatch/mysqlstore) share where SQLite's and MariaDB's dialects
// agree: the delivery columns and their scanning, the delivery-log filter,
// the statements on subscriptions, webhook state, stats and writebacks, and
// the encodings of times and JSON columns. What differs stays in each
// driver: table names (MariaDB's are prefixed rowhook_ and its change
// column is change_json, CHANGE being a reserved word), index hints
// (INDEXED BY against FORCE INDEX), upserts (ON CONFLICT against ON
// DUPLICATE KEY), row locks (FOR UPDATE), multi-row inserts and batched
// pruning, and MariaDB's /* rowhook */ statement tag, which its driver
// puts in front of every statement. dispatch/storetest, which both drivers
// run, is the judge of both.
package storesql

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowhook/rowhook/dispatch"
)

// Tables names one store's tables and its change column.
type Tables struct {
	Deliveries, Attempts, Subscriptions, WebhookState string
	// Change is the column holding a delivery's stored row change.
	Change string
}

// Queries are the statements both stores run, built for one store's
// Tables. None carries a statement tag.
type Queries struct {
	// DeliveryColumns is the column list ScanDelivery reads, in order.
	DeliveryColumns string
	// PendingColumns is the column list NewPendingScanner reads: what
	// sending a pending delivery needs (not its change, its last
	// result's fields, its writeback or its response).
	PendingColumns string
	// SelectDeliveries is SELECT DeliveryColumns FROM the deliveries
	// table; a WHERE or ORDER BY clause follows.
	SelectDeliveries string
	// Get selects one delivery by id.
	Get string
	// Writebacks selects the deliveries whose writeback is pending, by
	// seq, with a LIMIT parameter.
	Writebacks string
	// AttemptColumns is the column list ScanAttempts reads, in order.
	AttemptColumns string
	// SelectAttempts is SELECT AttemptColumns FROM the attempts table; a
	// WHERE clause follows.
	SelectAttempts string
	// RecordSet is the SET clause of recording an attempt's result
	// (parameters: status, attempts, next_at, updated_at, last_status,
	// last_error, writeback twice, writeback and response); the WHERE
	// clause is the store's own.
	RecordSet string
	// RedeliverSet is the SET clause of a redelivery (parameters: next_at,
	// updated_at); the WHERE clause is the store's own.
	RedeliverSet string
	// RerenderSet is RedeliverSet that also replaces the stored request
	// (parameters: next_at, updated_at, method, url, content_type,
	// headers, body).
	RerenderSet string
	// FinishWriteback sets writeback and writeback_error of a delivery by
	// id.
	FinishWriteback string
	// Fail fails the pending deliveries of a webhook and subscription
	// (parameters: last_error, updated_at, webhook, subscription).
	Fail string
	// AddSubscription, DeleteSubscription and Subscriptions keep the
	// REST-hook subscriptions.
	AddSubscription, DeleteSubscription, Subscriptions string
	// EnableWebhook deletes a webhook's disabled state; DisabledWebhooks
	// reads them all.
	EnableWebhook, DisabledWebhooks string
	// Stats counts the pending, failed and dead deliveries by webhook and
	// status, with the oldest pending creation time.
	Stats string
}

// New builds the shared statements for t.
func New(t Tables) Queries {
	cols := `seq, id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, body, ` + t.Change + `, event_time, created_at, next_at, updated_at, status, attempts, last_status, last_error,
	redelivered, writeback, writeback_error, response`
	sel := `SELECT ` + cols + ` FROM ` + t.Deliveries
	attemptCols := `n, kind, at, duration_us, method, url, request_headers, request_body,
		status, response_headers, response_body, error, note`
	return Queries{
		PendingColumns: `seq, id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, body, event_time, created_at, next_at, status, attempts`,
		DeliveryColumns:  cols,
		SelectDeliveries: sel,
		Get:              sel + ` WHERE id = ?`,
		Writebacks:       sel + ` WHERE writeback = 'pending' ORDER BY seq LIMIT ?`,
		AttemptColumns:   attemptCols,
		SelectAttempts:   `SELECT ` + attemptCols + ` FROM ` + t.Attempts,
		RecordSet: `SET status = ?, attempts = ?, next_at = ?, updated_at = ?,
		last_status = ?, last_error = ?,
		writeback = CASE WHEN ? != '' THEN ? ELSE writeback END,
		response = CASE WHEN ? != '' THEN ? ELSE response END`,
		RedeliverSet: `SET status = 'pending', attempts = 0, next_at = ?,
			updated_at = ?, redelivered = redelivered + 1, last_error = ''`,
		RerenderSet: `SET status = 'pending', attempts = 0, next_at = ?,
			updated_at = ?, redelivered = redelivered + 1, last_error = '',
			method = ?, url = ?, content_type = ?, headers = ?, body = ?`,
		FinishWriteback: `UPDATE ` + t.Deliveries + ` SET writeback = ?, writeback_error = ? WHERE id = ?`,
		Fail: `UPDATE ` + t.Deliveries + ` SET status = 'failed', last_error = ?, updated_at = ?
		WHERE webhook = ? AND subscription = ? AND status = 'pending'`,
		AddSubscription:    `INSERT INTO ` + t.Subscriptions + ` (id, url, event, created_at) VALUES (?,?,?,?)`,
		DeleteSubscription: `DELETE FROM ` + t.Subscriptions + ` WHERE id = ?`,
		Subscriptions:      `SELECT id, url, event, created_at FROM ` + t.Subscriptions + ` ORDER BY created_at, id`,
		EnableWebhook:      `DELETE FROM ` + t.WebhookState + ` WHERE webhook = ?`,
		DisabledWebhooks:   `SELECT webhook, disabled_reason FROM ` + t.WebhookState,
		// The oldest pending is the first in seq order (seq numbers
		// deliveries as they are created), so the pending part reads an
		// index (SQLite's partial deliveries_due, MySQL's
		// deliveries_status) and one row per webhook, and no GROUP BY
		// sorts the whole outbox: 1.4 s instead of 4.9 s with 1M pending
		// in SQLite (dispatch's BenchmarkScrape_1MPending).
		Stats: `SELECT p.webhook, 'pending', p.n, d.created_at FROM
		(SELECT webhook, COUNT(*) AS n, MIN(seq) AS s FROM ` + t.Deliveries + ` WHERE status = 'pending' GROUP BY webhook) p
		JOIN ` + t.Deliveries + ` d ON d.seq = p.s
		UNION ALL
		SELECT webhook, status, COUNT(*), NULL FROM ` + t.Deliveries + ` WHERE status IN ('failed', 'dead') GROUP BY webhook, status`,
	}
}

// RerenderArgs are RerenderSet's parameters for req.
func RerenderArgs(req dispatch.RenderedRequest, now time.Time) ([]any, error) {
	var headers any
	if len(req.Headers) > 0 {
		h, err := JSONText(req.Headers)
		if err != nil {
			return nil, fmt.Errorf("headers: %w", err)
		}
		headers = h
	}
	var body any
	if req.Body != nil {
		body = req.Body
	}
	return []any{Nanos(now), Nanos(now), req.Method, req.URL, req.ContentType, headers, body}, nil
}

// Scanner is a *sql.Row or *sql.Rows.
type Scanner interface{ Scan(...any) error }

// ScanDelivery reads one row of DeliveryColumns.
func ScanDelivery(sc Scanner) (dispatch.Delivery, error) {
	return NewDeliveryScanner().Scan(sc)
}

// DeliveryScanner reads rows of DeliveryColumns, followed by extra
// destinations, into destinations it keeps from row to row: a read of
// hundreds of deliveries (the pump's) allocated a dozen of them per row.
type DeliveryScanner struct {
	d                                 dispatch.Delivery
	headers, change, response         sql.NullString
	eventTime, created, next, updated int64
	status                            string
	dest                              []any
}

// NewDeliveryScanner returns a DeliveryScanner whose rows end with the
// columns extra are destinations for.
func NewDeliveryScanner(extra ...any) *DeliveryScanner {
	s := &DeliveryScanner{}
	d := &s.d
	s.dest = append([]any{&d.Seq, &d.ID, &d.EventID, &d.Rule, &d.Event, &d.Webhook, &d.Subscription, &d.Key, &d.Method,
		&d.URL, &d.ContentType, &s.headers, &d.Body, &s.change, &s.eventTime, &s.created, &s.next, &s.updated, &s.status,
		&d.Attempts, &d.LastStatus, &d.LastError, &d.Redelivered, &d.Writeback, &d.WritebackError, &s.response}, extra...)
	return s
}

// NewPendingScanner returns a DeliveryScanner of PendingColumns: the
// deliveries it reads lack the other columns' fields (Change, UpdatedAt,
// LastStatus, LastError, Redelivered, Writeback, WritebackError,
// Response).
func NewPendingScanner(extra ...any) *DeliveryScanner {
	s := &DeliveryScanner{}
	d := &s.d
	s.dest = append([]any{&d.Seq, &d.ID, &d.EventID, &d.Rule, &d.Event, &d.Webhook, &d.Subscription, &d.Key, &d.Method,
		&d.URL, &d.ContentType, &s.headers, &d.Body, &s.eventTime, &s.created, &s.next, &s.status, &d.Attempts}, extra...)
	return s
}

// Scan reads the next row of sc.
func (s *DeliveryScanner) Scan(sc Scanner) (dispatch.Delivery, error) {
	s.d = dispatch.Delivery{}
	d := &s.d
	if err := sc.Scan(s.dest...); err != nil {
		return *d, err
	}
	d.Status = dispatch.Status(s.status)
	d.EventTime, d.CreatedAt, d.NextAt, d.UpdatedAt = FromNanos(s.eventTime), FromNanos(s.created), FromNanos(s.next), FromNanos(s.updated)
	if s.headers.Valid {
		if err := json.Unmarshal([]byte(s.headers.String), &d.Headers); err != nil {
			return *d, fmt.Errorf("delivery %s headers: %w", d.ID, err)
		}
	}
	if s.change.Valid {
		d.Change = json.RawMessage(s.change.String)
	}
	if s.response.Valid {
		d.Response = new(dispatch.Response)
		if err := json.Unmarshal([]byte(s.response.String), d.Response); err != nil {
			return *d, fmt.Errorf("delivery %s response: %w", d.ID, err)
		}
	}
	return *d, nil
}

// ScanDeliveries reads and closes rows of DeliveryColumns.
func ScanDeliveries(rows *sql.Rows) ([]dispatch.Delivery, error) {
	defer rows.Close()
	var out []dispatch.Delivery
	sc := NewDeliveryScanner()
	for rows.Next() {
		d, err := sc.Scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ScanAttempts reads and closes rows of AttemptColumns, the log of
// delivery id.
func ScanAttempts(rows *sql.Rows, id string) ([]dispatch.Attempt, error) {
	defer rows.Close()
	var out []dispatch.Attempt
	for rows.Next() {
		a := dispatch.Attempt{DeliveryID: id}
		var at, dur int64
		var reqH, respH sql.NullString
		if err := rows.Scan(&a.N, &a.Kind, &at, &dur, &a.Method, &a.URL, &reqH, &a.RequestBody, &a.Status, &respH,
			&a.ResponseBody, &a.Error, &a.Note); err != nil {
			return nil, err
		}
		a.At = FromNanos(at)
		a.Duration = time.Duration(dur) * time.Microsecond
		if reqH.Valid {
			_ = json.Unmarshal([]byte(reqH.String), &a.RequestHeaders)
		}
		if respH.Valid {
			_ = json.Unmarshal([]byte(respH.String), &a.ResponseHeaders)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ScanSubscriptions reads and closes the rows of Subscriptions.
func ScanSubscriptions(rows *sql.Rows) ([]dispatch.Subscription, error) {
	defer rows.Close()
	var out []dispatch.Subscription
	for rows.Next() {
		var sub dispatch.Subscription
		var at int64
		if err := rows.Scan(&sub.ID, &sub.URL, &sub.Event, &at); err != nil {
			return nil, err
		}
		sub.CreatedAt = FromNanos(at)
		out = append(out, sub)
	}
	return out, rows.Err()
}

// ScanDisabledWebhooks reads and closes the rows of DisabledWebhooks:
// webhook → reason.
func ScanDisabledWebhooks(rows *sql.Rows) (map[string]string, error) {
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var w, r string
		if err := rows.Scan(&w, &r); err != nil {
			return nil, err
		}
		out[w] = r
	}
	return out, rows.Err()
}

// ScanStats reads and closes the rows of Stats.
func ScanStats(rows *sql.Rows) ([]dispatch.QueueStat, error) {
	defer rows.Close()
	var out []dispatch.QueueStat
	for rows.Next() {
		var q dispatch.QueueStat
		var status string
		var oldest sql.NullInt64
		if err := rows.Scan(&q.Webhook, &status, &q.Count, &oldest); err != nil {
			return nil, err
		}
		q.Status = dispatch.Status(status)
		if oldest.Valid {
			q.OldestPending = FromNanos(oldest.Int64)
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// FilterWhere is the WHERE clause (with a leading space, never empty: 1=1
// without conditions, so that the caller may add AND …) and its arguments
// for a delivery-log filter.
func FilterWhere(f dispatch.Filter) (string, []any) {
	conds := []string{"1=1"}
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if f.Webhook != "" {
		add("webhook = ?", f.Webhook)
	}
	if f.Subscription != "" {
		add("subscription = ?", f.Subscription)
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", Nanos(f.Until))
	}
	if prefix, ok := strings.CutSuffix(f.Key, "*"); ok {
		// Not LIKE: SQLite's ignores ASCII case, MariaDB's (utf8mb4_bin)
		// does not. SUBSTR counts characters in both.
		add("SUBSTR(record_key, 1, ?) = ?", utf8.RuneCountInString(prefix), prefix)
	} else if f.Key != "" {
		add("record_key = ?", f.Key)
	}
	if f.EventID != "" {
		add("event_id = ?", f.EventID)
	}
	if f.ID != "" {
		add("id = ?", f.ID)
	}
	if f.Search != "" {
		add("(id = ? OR event_id = ? OR record_key = ?)", f.Search, f.Search, f.Search)
	}
	if f.AfterSeq > 0 {
		add("seq < ?", f.AfterSeq)
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// QueueName names a webhook's queue, or a subscription's, in errors.
func QueueName(webhook, sub string) string {
	if sub != "" {
		return webhook + " " + sub
	}
	return webhook
}

// Nanos is how the stores keep a time: Unix nanoseconds, 0 for the zero
// time.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos reads what Nanos wrote, in UTC.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// InsertValues are the stored forms of d's computed columns: its headers
// as JSON text (NULL without headers), its change (NULL without), and its
// first status (failed when its request could not be built).
func InsertValues(d *dispatch.NewDelivery) (headers, change any, status string, err error) {
	if len(d.Headers) > 0 {
		if headers, err = JSONText(d.Headers); err != nil {
			return nil, nil, "", fmt.Errorf("headers: %w", err)
		}
	}
	if len(d.Change) > 0 {
		change = string(d.Change)
	}
	status = string(dispatch.StatusPending)
	if d.Error != "" {
		status = string(dispatch.StatusFailed)
	}
	return headers, change, status, nil
}

// JSONText marshals v to JSON text for a TEXT column, or nil (NULL) for a
// nil value.
func JSONText(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	return string(b), nil
}
