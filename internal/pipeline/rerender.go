package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// Rerender is rowhook redeliver --rerender: it builds the requests of
// finished deliveries again, faithful to the event, from the row images
// in the source's binlog (not today's rows), with the rules and webhooks
// of the config at cfgPath, and re-queues them with the new requests
// (dispatch.Store.Rerender). For each delivery it reads the one binlog
// transaction its event id names, runs the current rules over it, takes
// the event with the delivery's event id and builds the request for the
// delivery's webhook (or subscription) as a new delivery's is built.
//
// Every delivery is rebuilt before any is stored: when one cannot be (its
// binlog purged, its rule or webhook gone, the rule no longer matching the
// row, the delivery pending) the error says which and why, and nothing
// changes. It returns the ids re-queued, in the order given (with an
// error, those stored before the store failed).
func Rerender(ctx context.Context, cfgPath string, st dispatch.Store, ids []string, actor string, logger *slog.Logger) ([]string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, _, err := Load(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	if !cfg.Dispatch.Admin.AllowRedeliver {
		return nil, dispatch.ErrRedeliverDisabled
	}
	type job struct {
		d      dispatch.Delivery
		tx     string
		subURL string
	}
	var jobs []job
	for _, id := range ids {
		d, _, err := st.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("re-render %s: %w", id, err)
		}
		if d.Status == dispatch.StatusPending {
			return nil, fmt.Errorf("re-render %s: the delivery is pending (waiting for an attempt or being sent); re-render it once it is finished (ok, failed or dead): %w", id, dispatch.ErrPending)
		}
		if !slices.ContainsFunc(cfg.Rules.Rules, func(r rules.RuleConfig) bool { return r.Name == d.Rule }) {
			return nil, fmt.Errorf("re-render %s: rule %q, whose event it delivers, no longer exists in %s; the stored request can still be re-sent without --rerender", id, d.Rule, cfgPath)
		}
		j := job{d: d}
		if d.Webhook == dispatch.SubscriptionWebhook {
			if j.subURL, err = subscriptionURL(ctx, st, d.Subscription); err != nil {
				return nil, fmt.Errorf("re-render %s: %w", id, err)
			}
		} else if _, ok := cfg.Dispatch.Webhooks[d.Webhook]; !ok {
			return nil, fmt.Errorf("re-render %s: webhook %q no longer exists in %s; the stored request can still be re-sent without --rerender", id, d.Webhook, cfgPath)
		}
		if j.tx, err = EventTx(d.EventID, d.Rule); err != nil {
			return nil, fmt.Errorf("re-render %s: %w", id, err)
		}
		jobs = append(jobs, j)
	}

	src := cfg.Source
	// Heartbeats tell the reader the source has sent everything: a
	// transaction not found by then is not there.
	src.Heartbeat, src.MaxReconnects = time.Second, 2
	if src.ReadTimeout > 0 && src.ReadTimeout <= src.Heartbeat {
		src.ReadTimeout = 10 * time.Second
	}
	r, err := cdc.New(src, cdc.Deps{Logger: logger})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	insp, err := r.Inspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	srcDB, err := r.DB()
	if err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	eng, err := rules.New(ctx, cfg.Rules, rules.Deps{Logger: logger, Source: srcDB, Skip: writeback.IsOwnChange})
	if err != nil {
		return nil, err
	}
	reg := soap.NewRegistry(soap.Deps{Logger: logger, BaseDir: filepath.Dir(cfgPath)})
	disp, err := dispatch.New(cfg.Dispatch, st, dispatch.Deps{Logger: logger,
		Encoders: map[string]dispatch.EncoderFactory{dispatch.ContentSOAP: reg.Factory(ctx)}})
	if err != nil {
		return nil, err
	}

	events := map[string][]rules.Event{} // by transaction id
	reqs := make([]dispatch.RenderedRequest, len(jobs))
	for i, j := range jobs {
		evs, ok := events[j.tx]
		if !ok {
			tx, err := readTx(ctx, r, srcDB, insp.Flavor, j.tx)
			if err != nil {
				return nil, fmt.Errorf("re-render %s: %w", j.d.ID, err)
			}
			if evs, err = eng.Process(ctx, tx); err != nil {
				return nil, fmt.Errorf("re-render %s: rules on binlog transaction %s: %w", j.d.ID, j.tx, err)
			}
			// Close every settle window: the transaction is all there is.
			more, err := eng.Flush(ctx, tx.Timestamp.Add(24*time.Hour))
			if err != nil {
				return nil, fmt.Errorf("re-render %s: rules on binlog transaction %s: %w", j.d.ID, j.tx, err)
			}
			evs = append(evs, more...)
			events[j.tx] = evs
		}
		k := slices.IndexFunc(evs, func(ev rules.Event) bool { return ev.ID == j.d.EventID })
		if k < 0 {
			return nil, fmt.Errorf("re-render %s: rule %q no longer matches row %s of binlog transaction %s (record %s) with the current config (its table, on: or when:); nothing was changed",
				j.d.ID, j.d.Rule, strings.TrimSuffix(strings.TrimPrefix(j.d.EventID, j.tx+":"), ":"+j.d.Rule), j.tx, j.d.Key)
		}
		ev := &evs[k]
		if j.d.Webhook != dispatch.SubscriptionWebhook && !slices.Contains(ev.Webhooks, j.d.Webhook) {
			return nil, fmt.Errorf("re-render %s: rule %q no longer delivers to webhook %q (its webhooks: %s)", j.d.ID, j.d.Rule, j.d.Webhook, strings.Join(ev.Webhooks, ", "))
		}
		req, err := disp.Render(ev, j.d.Webhook, j.subURL)
		if err != nil {
			return nil, fmt.Errorf("re-render %s: %w", j.d.ID, err)
		}
		req.From = j.tx
		reqs[i] = req
	}
	now := time.Now()
	var done []string
	for i, j := range jobs {
		if err := st.Rerender(ctx, j.d.ID, reqs[i], now, actor); err != nil {
			return done, err
		}
		done = append(done, j.d.ID)
	}
	return done, nil
}

func subscriptionURL(ctx context.Context, st dispatch.Store, id string) (string, error) {
	subs, err := st.Subscriptions(ctx)
	if err != nil {
		return "", err
	}
	for _, s := range subs {
		if s.ID == id {
			return s.URL, nil
		}
	}
	return "", fmt.Errorf("subscription %s no longer exists; the stored request can still be re-sent without --rerender", id)
}

// EventTx returns the binlog transaction id in event id eventID of rule:
// event ids are "<transaction id>:<row ordinal>:<rule>", the transaction
// id a GTID (MariaDB d-s-n, MySQL uuid:n) or binlog file:offset.
func EventTx(eventID, rule string) (string, error) {
	rest, ok := strings.CutSuffix(eventID, ":"+rule)
	if ok {
		i := strings.LastIndexByte(rest, ':')
		if i > 0 {
			if _, err := strconv.Atoi(rest[i+1:]); err == nil {
				return rest[:i], nil
			}
		}
	}
	return "", fmt.Errorf("event id %q is not <binlog transaction>:<row>:%s: it was not read from a binlog (a sample or test event?)", eventID, rule)
}

var (
	errFound    = errors.New("transaction found")
	errNotThere = errors.New("the source has sent everything up to now")
)

// oneTx takes the first transaction the reader hands over.
type oneTx struct {
	tx *cdc.Transaction
}

func (h *oneTx) HandleTransaction(_ context.Context, tx *cdc.Transaction) error {
	h.tx = tx
	return errFound
}

func (h *oneTx) HandleIdle(context.Context, time.Time) error {
	return errNotThere
}

// readTx reads binlog transaction id from the source: it starts the
// binlog just before it and takes the first transaction sent.
func readTx(ctx context.Context, r *cdc.Reader, db *sql.DB, flavor, id string) (*cdc.Transaction, error) {
	from, err := txStart(ctx, db, flavor, id)
	if err != nil {
		return nil, err
	}
	h := &oneTx{}
	err = r.Run(ctx, from, h)
	var pe *cdc.PurgedError
	switch {
	case errors.As(err, &pe):
		oldest := pe.OldestFile
		if pe.OldestGTID != "" {
			oldest += ", which starts after GTID " + pe.OldestGTID
		}
		if oldest == "" {
			oldest = "unknown"
		}
		return nil, fmt.Errorf("binlog for %s is no longer on the source %s (oldest: %s); the stored request can still be re-sent without --rerender", id, r.Source().Redacted(), oldest)
	case errors.Is(err, errFound):
	case errors.Is(err, errNotThere):
		return nil, fmt.Errorf("binlog transaction %s is not on the source %s: reading from just before it reached the end of the binlog without it", id, r.Source().Redacted())
	case err != nil:
		return nil, fmt.Errorf("read binlog transaction %s from %s: %w", id, r.Source().Redacted(), err)
	default: // cancelled
		return nil, fmt.Errorf("read binlog transaction %s: %w", id, context.Cause(ctx))
	}
	if h.tx.ID != id {
		return nil, fmt.Errorf("binlog transaction %s is not on the source %s: reading from just before it, the next transaction is %s", id, r.Source().Redacted(), h.tx.ID)
	}
	return h.tx, nil
}

// txStart is the position just before transaction id: a file:offset id
// starts there; a MariaDB GTID d-s-n starts after d-s-(n-1), the other
// domains at the source's current position (so that only domain d is
// sent again); a MySQL GTID uuid:n starts with every executed GTID but it.
func txStart(ctx context.Context, db *sql.DB, flavor, id string) (cdc.Checkpoint, error) {
	cp := cdc.Checkpoint{Flavor: flavor}
	if g, err := mysql.ParseMariadbGTID(id); err == nil && flavor == mysql.MariaDBFlavor && strings.Count(id, "-") == 2 {
		var cur sql.NullString
		if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT @@gtid_binlog_pos").Scan(&cur); err != nil {
			return cp, fmt.Errorf("read the source's GTID position: %w", err)
		}
		cp.GTIDSet = mariaDBSetBefore(cur.String, g)
		return cp, nil
	}
	if flavor == mysql.MySQLFlavor && !strings.Contains(id, "/") && strings.Count(id, "-") == 4 {
		var cur sql.NullString
		if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT @@gtid_executed").Scan(&cur); err != nil {
			return cp, fmt.Errorf("read the source's executed GTIDs: %w", err)
		}
		set, err := MySQLSetWithout(cur.String, id)
		if err != nil {
			return cp, err
		}
		cp.GTIDSet = set
		return cp, nil
	}
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return cp, fmt.Errorf("binlog transaction %q: neither a %s GTID nor FILE:OFFSET", id, flavor)
	}
	pos, err := strconv.ParseUint(id[i+1:], 10, 32)
	if err != nil {
		return cp, fmt.Errorf("binlog transaction %q: neither a %s GTID nor FILE:OFFSET", id, flavor)
	}
	cp.File, cp.Pos = id[:i], uint32(pos)
	return cp, nil
}

// mariaDBSetBefore is MariaDB GTID position cur with g's domain set to
// just before g.
func mariaDBSetBefore(cur string, g *mysql.MariadbGTID) string {
	var out []string
	for _, part := range strings.Split(strings.ReplaceAll(cur, "\n", ""), ",") {
		part = strings.TrimSpace(part)
		if part == "" || strings.HasPrefix(part, strconv.FormatUint(uint64(g.DomainID), 10)+"-") {
			continue
		}
		out = append(out, part)
	}
	out = append(out, fmt.Sprintf("%d-%d-%d", g.DomainID, g.ServerID, g.SequenceNumber-1))
	return strings.Join(out, ",")
}

// MySQLSetWithout is MySQL GTID set executed (gtid_executed form) without
// the one transaction gtid (uuid:n): the set to ask for to be sent it.
func MySQLSetWithout(executed, gtid string) (string, error) {
	uuid, nStr, ok := strings.Cut(gtid, ":")
	n, err := strconv.ParseInt(nStr, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("binlog transaction %q is not a MySQL GTID uuid:n", gtid)
	}
	var out []string
	for _, elem := range strings.Split(strings.ReplaceAll(executed, "\n", ""), ",") {
		elem = strings.TrimSpace(elem)
		parts := strings.Split(elem, ":")
		if elem == "" || !strings.EqualFold(parts[0], uuid) {
			if elem != "" {
				out = append(out, elem)
			}
			continue
		}
		keep := []string{parts[0]}
		tagged := false
		for _, iv := range parts[1:] {
			if iv != "" && (iv[0] < '0' || iv[0] > '9') { // a tag: its intervals are other transactions
				tagged = true
				keep = append(keep, iv)
				continue
			}
			lo, hi, err := interval(iv)
			if err != nil {
				return "", fmt.Errorf("source gtid_executed %q: %w", executed, err)
			}
			if tagged || n < lo || n > hi {
				keep = append(keep, iv)
				continue
			}
			if lo < n {
				keep = append(keep, ivString(lo, n-1))
			}
			if n < hi {
				keep = append(keep, ivString(n+1, hi))
			}
		}
		if len(keep) > 1 {
			out = append(out, strings.Join(keep, ":"))
		}
	}
	return strings.Join(out, ","), nil
}

func interval(s string) (lo, hi int64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("interval %q", s)
	}
	hi = lo
	if isRange {
		if hi, err = strconv.ParseInt(b, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("interval %q", s)
		}
	}
	return lo, hi, nil
}

func ivString(lo, hi int64) string {
	if lo == hi {
		return strconv.FormatInt(lo, 10)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}
