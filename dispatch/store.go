package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// Status is where a delivery stands.
type Status string

// Delivery statuses. A delivery is pending until it succeeds (ok), fails
// permanently (failed: a 4xx other than 408/429, a 410, an encoding error) or
// runs out of attempts (dead). failed and dead deliveries stay in the store
// as dead letters until retention removes them; redelivery makes them
// pending again.
const (
	StatusPending Status = "pending"
	StatusOK      Status = "ok"
	StatusFailed  Status = "failed"
	StatusDead    Status = "dead"
)

// ValidStatus reports whether s is a delivery status.
func ValidStatus(s Status) bool {
	switch s {
	case StatusPending, StatusOK, StatusFailed, StatusDead:
		return true
	}
	return false
}

// Writeback statuses of a delivery whose rule writes response values back.
const (
	WritebackNone    = ""
	WritebackPending = "pending"
	WritebackDone    = "done"
	WritebackFailed  = "failed"
)

// SubscriptionWebhook is the Webhook name of deliveries to subscriptions;
// their Subscription field holds the subscription id.
const SubscriptionWebhook = "subscription"

// Errors.
var (
	// ErrNotFound: no delivery or subscription with that id.
	ErrNotFound = errors.New("dispatch: not found")
	// ErrRedeliverDisabled: the configuration does not allow re-runs.
	ErrRedeliverDisabled = errors.New("dispatch: redelivery is disabled (set admin.allow_redeliver: true)")
	// ErrPending: a re-render of a delivery that is pending (waiting or
	// being sent); it is left alone.
	ErrPending = errors.New("dispatch: delivery is pending")
	// ErrClosed: the dispatcher is shutting down.
	ErrClosed = errors.New("dispatch: closed")
	// ErrNoState: the state store exists but holds no rowhook state (an
	// empty file, a file or schema without rowhook's tables). That is not
	// a fresh start: the checkpoint is lost, and starting at source.start
	// would skip what was written meanwhile.
	ErrNoState = errors.New("dispatch: the state store holds no rowhook state")
)

// NewDelivery is a delivery to enqueue: one event for one webhook or
// subscription, with its request fixed.
type NewDelivery struct {
	// ID is derived from the event id and target (DeliveryID); the store
	// refuses a second delivery with the same id.
	ID           string
	EventID      string
	Rule         string
	Event        string
	Webhook      string
	Subscription string
	// Key is the record key (schema.table:pk) for per-record ordering.
	Key string
	// Once: enqueue only if no other event of Rule and Key was enqueued
	// before (the store keeps (rule, key) → event id markers).
	Once        bool
	Method      string
	URL         string
	ContentType string
	// Headers are the payload's own headers (not auth, not configured
	// headers: those are added per attempt and never stored).
	Headers map[string]string
	Body    []byte
	// Change is the row change as JSON, kept only when the rule writes
	// back (writeback expressions need row and old).
	Change json.RawMessage
	// EventTime is the binlog commit time of the change.
	EventTime time.Time
	CreatedAt time.Time
	// NextAt is when the first attempt is due (later for scheduled webhooks).
	NextAt time.Time
	// Error, when set, stores the delivery as failed at once: its request
	// could not be built (a URL template without a value, a body that does
	// not encode). It stays visible as a dead letter instead of vanishing.
	Error string
}

// RenderedRequest is a delivery's request built again from its binlog
// transaction with the current config (rowhook redeliver --rerender).
type RenderedRequest struct {
	Method, URL, ContentType string
	// Headers are the payload's own headers, as NewDelivery.Headers.
	Headers map[string]string
	Body    []byte
	// From is the binlog transaction id it was built from, for the log.
	From string
}

// Delivery is a stored delivery.
type Delivery struct {
	NewDelivery
	// Seq orders deliveries by enqueue order.
	Seq         int64
	Status      Status
	Attempts    int
	UpdatedAt   time.Time
	LastStatus  int
	LastError   string
	Redelivered int
	// Writeback is "", pending, done or failed.
	Writeback      string
	WritebackError string
	// Response is the successful response kept for writeback.
	Response *Response
}

// Attempt is one entry of the delivery log: an HTTP attempt, or a note such
// as a manual re-run (Kind "redeliver").
type Attempt struct {
	DeliveryID string
	// DeliverySeq is the delivery's Seq when the writer knows it (0 when
	// not): a store may use it instead of looking the id up.
	DeliverySeq int64
	// N counts attempts from 1 (0 for notes).
	N        int
	Kind     string
	At       time.Time
	Duration time.Duration
	// Request, redacted.
	Method         string
	URL            string
	RequestHeaders map[string][]string
	RequestBody    []byte
	// Response, truncated; zero Status when none came.
	Status          int
	ResponseHeaders map[string][]string
	ResponseBody    []byte
	Error           string
	// Note explains a non-attempt entry.
	Note string
}

// Attempt kinds.
const (
	KindAttempt   = "attempt"
	KindRedeliver = "redeliver"
	KindWriteback = "writeback"
)

// Result is the outcome of one attempt to store: the attempt log entry and
// the delivery's new state, written in one transaction.
type Result struct {
	Attempt Attempt
	Status  Status
	// Attempts is the delivery's attempt count after this one.
	Attempts int
	// NextAt is when to try again (Status pending).
	NextAt time.Time
	// Writeback, when set on success, records that writeback is pending
	// with this response.
	Writeback *Response
}

// Filter selects deliveries to list or redeliver.
type Filter struct {
	Webhook      string
	Subscription string
	Status       Status
	// Since keeps deliveries created at or after it, Until those created
	// before it: together an absolute time range.
	Since, Until time.Time
	// Key keeps the deliveries of one record key (schema.table:pk); a
	// trailing * matches keys starting with the rest
	// ("crm.vtiger_potential:*"). EventID and ID keep one event's
	// deliveries and one delivery.
	Key, EventID, ID string
	// Search keeps deliveries whose id, event id or record key is Search
	// (one search box for the three).
	Search string
	// Limit caps the result (0: store default 100); AfterSeq pages.
	Limit    int
	AfterSeq int64
}

// PendingQuery selects deliveries to attempt for one queue.
type PendingQuery struct {
	Webhook      string
	Subscription string
	// DueBy, when set, keeps deliveries with NextAt <= DueBy ordered by
	// NextAt then Seq; when zero, every pending delivery in Seq order (for
	// per-record ordering, where an earlier delivery waiting for a retry
	// must hold back later ones of the same record).
	DueBy time.Time
	// AfterNextAt and AfterSeq, when AfterSeq is set (with DueBy), keep only
	// the deliveries after that position in (NextAt, Seq) order: a reader
	// holding the rows up to it reads on from there.
	AfterNextAt time.Time
	AfterSeq    int64
	Limit       int
}

// Subscription is a REST-hook subscription: Event deliveries go to URL.
type Subscription struct {
	ID        string    `json:"id"`
	URL       string    `json:"target_url"`
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"created_at"`
}

// QueueStat is a queue gauge sample: deliveries per webhook and status, and
// the creation time of the oldest pending one.
type QueueStat struct {
	Webhook       string
	Status        Status
	Count         int64
	OldestPending time.Time
}

// PendingWriteback is a successful delivery whose writeback has not been
// applied yet.
type PendingWriteback struct {
	Delivery Delivery
	Attempts int
}

// Store is rowhook's durable state: checkpoint, outbox, delivery log, once
// markers, subscriptions and webhook state. Methods are safe for concurrent
// use. A MySQL implementation must keep Commit's atomicity.
type Store interface {
	// Commit writes ds and cp in one transaction: a delivery whose ID is
	// already stored is skipped, a Once delivery is skipped when a marker
	// for its (Rule, Key) names another event (the marker is set
	// otherwise), and the checkpoint is replaced when cp is not zero.
	// It returns how many deliveries were inserted.
	Commit(ctx context.Context, cp cdc.Checkpoint, ds []NewDelivery) (int, error)
	// Checkpoint returns the last committed checkpoint; false when none.
	Checkpoint(ctx context.Context) (cdc.Checkpoint, bool, error)

	// Pending returns pending deliveries of one queue (see PendingQuery),
	// with at least what sending needs (storesql.PendingColumns): a store
	// may leave out the change, the last result's fields, the writeback
	// and the response, which Get and List return.
	Pending(ctx context.Context, q PendingQuery) ([]Delivery, error)
	// NextDue returns the earliest NextAt after after of a queue's
	// pending deliveries (those due by then do not hide the next one to
	// come).
	NextDue(ctx context.Context, webhook, subscription string, after time.Time) (time.Time, bool, error)
	// Record stores attempt results in one transaction, each appending its
	// attempt to the log and updating its delivery.
	Record(ctx context.Context, rs []Result) error

	// Writebacks returns up to limit deliveries with writeback pending.
	Writebacks(ctx context.Context, limit int) ([]Delivery, error)
	// FinishWriteback sets a delivery's writeback status (done or failed,
	// or pending with the error of the last try) and logs the try.
	FinishWriteback(ctx context.Context, id, status, errMsg string, at time.Time) error

	// List returns deliveries matching f, newest first.
	List(ctx context.Context, f Filter) ([]Delivery, error)
	// Get returns one delivery and its log; ErrNotFound when absent.
	Get(ctx context.Context, id string) (Delivery, []Attempt, error)
	// Redeliver makes the given deliveries (ids, or every one matching f
	// when ids is empty) pending again, due at now, and logs a note with
	// actor. Pending deliveries are left alone. It returns the ids re-queued.
	Redeliver(ctx context.Context, ids []string, f Filter, now time.Time, actor string) ([]string, error)
	// Rerender replaces a finished delivery's stored request with req,
	// makes it pending again, due at now (as Redeliver does), and logs a
	// RerenderNote with actor, in one transaction. ErrNotFound when
	// absent; a pending delivery is refused with ErrPending and left
	// alone.
	Rerender(ctx context.Context, id string, req RenderedRequest, now time.Time, actor string) error
	// Fail marks every pending delivery of a queue failed with reason (a
	// subscription removed, for one). It returns how many changed.
	Fail(ctx context.Context, webhook, subscription, reason string, now time.Time) (int, error)

	// AddSubscription stores s; DeleteSubscription removes one
	// (ErrNotFound when absent); Subscriptions lists them.
	AddSubscription(ctx context.Context, s Subscription) error
	DeleteSubscription(ctx context.Context, id string) error
	Subscriptions(ctx context.Context) ([]Subscription, error)

	// SetWebhookDisabled records that a webhook was disabled (a 410), or
	// clears it when reason is empty; DisabledWebhooks lists them.
	SetWebhookDisabled(ctx context.Context, webhook, reason string, at time.Time) error
	DisabledWebhooks(ctx context.Context) (map[string]string, error)

	// Stats returns queue gauges.
	Stats(ctx context.Context) ([]QueueStat, error)
	// Prune deletes finished deliveries (ok, failed, dead) last updated
	// before cutoff, with their log. It returns how many were deleted.
	Prune(ctx context.Context, cutoff time.Time) (int, error)
	// Close releases the store.
	Close() error
}
