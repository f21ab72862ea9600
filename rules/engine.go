package rules

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Sentinel errors.
var (
	// ErrNoSource: an operation needs the source database and Deps.Source is nil.
	ErrNoSource = errors.New("rules: no source connection")
	// ErrUnknownEvent: no rule uses the event name asked for.
	ErrUnknownEvent = errors.New("rules: unknown event")
)

// Deps are the engine's collaborators.
type Deps struct {
	Logger *slog.Logger
	// Source is a read-only connection to the source, for lookups, the
	// perform list and column checks; nil works offline.
	Source *sql.DB
	// Skip reports changes to ignore entirely (rowhook's own writeback
	// writes); nil skips changes whose statement carries cdc.WritebackTag.
	Skip func(*cdc.Change) bool
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the engine's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Engine evaluates rules on committed transactions and builds event bodies.
// Process, Flush and Hold must be called from one goroutine at a time (they
// also lock); SampleHandler may serve concurrently.
type Engine struct {
	cfg    Config
	logger *slog.Logger
	source *sql.DB
	skip   func(*cdc.Change) bool
	now    func() time.Time
	loc    *time.Location
	settle time.Duration

	rules  []*rule
	exact  map[string][]*rule // "schema.table"
	byName map[string][]*rule // "table" in any schema
	globs  []*rule
	bodies map[string]*bodyFunc
	// existing lists the source's tables ("schema.table"), nil offline.
	existing map[string]bool

	// vt is the Vtiger tracking state, nil when no rule uses the preset.
	vt *vtTracker
	m  *metrics

	mu      sync.Mutex
	matched map[string][]*rule // per "schema.table": rules that apply
	// last is the last rulesFor answer (consecutive changes are mostly on
	// one table).
	last struct {
		ok            bool
		schema, table string
		rules         []*rule
	}
	ec      *evalCtx
	env     *env
	machine vm.VM
	lastCP  cdc.Checkpoint
	// queue holds the events behind one held in a settle window; out
	// collects a Process call's events while nothing is held (not
	// queued: no allocation each), in binlog order before queue's.
	queue    []*queued
	out      []Event
	outRules []*rule    // the rule of each event in out
	in       buildInput // fire's, reused
	eval     *bodyEval  // YAML bodies', reused
	idBuf    []byte
	memo     changeMemo
	boxes    boxCache
	// lookupStub replaces YAML bodies' lookup results (rule tests).
	lookupStub map[string]map[string]any
	// drifted holds the schema drift warnings already logged.
	drifted map[driftKey]bool
}

// changeMemo holds what several rules firing on one change share.
type changeMemo struct {
	key      string
	bodyFunc *bodyFunc
	body     Body
}

// rule is a compiled rule.
type rule struct {
	idx  int
	cfg  RuleConfig
	ops  uint8
	prog *vm.Program
	body *bodyFunc
	// events and bodyErrors count the rule's events and those sent with a
	// null field (resolved once, not per event).
	events     prometheus.Counter
	bodyErrors prometheus.Counter
	// cols is the schema drift check for the last column list seen.
	cols colCheck
}

const (
	opInsert uint8 = 1 << iota
	opUpdate
	opDelete
)

func opBit(op cdc.Op) uint8 {
	switch op {
	case cdc.OpInsert:
		return opInsert
	case cdc.OpUpdate:
		return opUpdate
	case cdc.OpDelete:
		return opDelete
	}
	return 0
}

// queued is an event waiting to be returned: events leave in binlog order,
// so a ready event waits behind one still held in a settle window.
type queued struct {
	ev    Event
	ready bool
	drop  bool
	rule  *rule
	win   *vtWindow
}

// New compiles and type-checks every program once, checks column names
// against the source's schema when deps.Source is set, and returns the
// engine. Configuration errors are yamlconf path errors.
func New(ctx context.Context, cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		logger:  deps.Logger,
		source:  deps.Source,
		skip:    deps.Skip,
		now:     deps.Now,
		loc:     time.UTC,
		settle:  cfg.Vtiger.Settle,
		exact:   map[string][]*rule{},
		byName:  map[string][]*rule{},
		bodies:  map[string]*bodyFunc{},
		matched: map[string][]*rule{},
		ec:      &evalCtx{},
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	e.logger = e.logger.With("component", "rules")
	if e.skip == nil {
		e.skip = func(c *cdc.Change) bool { return strings.Contains(c.Annotation, cdc.WritebackTag) }
	}
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.Timezone != "" {
		e.loc, _ = time.LoadLocation(cfg.Timezone)
	}
	if e.settle == 0 {
		e.settle = DefaultSettle
	}
	e.env = newEnv(e.ec)

	var schema *sourceSchema
	if deps.Source != nil {
		s, err := loadSchema(ctx, deps.Source)
		if err != nil {
			return nil, fmt.Errorf("rules: read the source's columns: %w", err)
		}
		schema = s
		e.existing = s.tables
	}

	var errs []error
	// YAML bodies: columns are checked when every rule using the body
	// reads one known table.
	for name, bc := range cfg.Bodies {
		var cols *columnSet
		if schema != nil {
			cols = schema.commonColumns(cfg.Rules, name)
		}
		f, err := compileYAMLBody(name, bc, cols)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.bodies[name] = f
	}
	for n, f := range builtins {
		e.bodies[n] = f
	}
	var modules []*vtModule
	for i, rc := range cfg.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		r := &rule{idx: i, cfg: rc, body: e.bodies[rc.Event]}
		if r.body == nil {
			continue // reported above (a YAML body that failed to compile)
		}
		for _, op := range rc.On {
			r.ops |= opBit(cdc.Op(op))
		}
		if r.ops == 0 {
			r.ops = opInsert | opUpdate | opDelete
		}
		var cols *columnSet
		if schema != nil {
			c, err := schema.columnsFor(rc.Table)
			if err != nil {
				errs = append(errs, yamlconf.Errf(p+".table", "%v", err))
				continue
			}
			cols = c
		}
		prog, err := compileCondition(p+".when", rc.When, cols)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.prog = prog
		if m := r.body.vtiger; m != nil {
			if err := checkVtigerTable(rc.Table, m); err != nil {
				errs = append(errs, yamlconf.Errf(p+".table", "%v", err))
				continue
			}
			modules = append(modules, m)
		}
		e.rules = append(e.rules, r)
		switch {
		case strings.ContainsAny(rc.Table, "*?["):
			e.globs = append(e.globs, r)
		case strings.Contains(rc.Table, "."):
			e.exact[rc.Table] = append(e.exact[rc.Table], r)
		default:
			e.byName[rc.Table] = append(e.byName[rc.Table], r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(modules) > 0 {
		e.vt = newTracker(cfg.Vtiger.Schema, modules)
		if schema != nil && cfg.Vtiger.Schema != "" && !schema.tables[cfg.Vtiger.Schema+"."+crmentity] {
			return nil, yamlconf.Errf("vtiger.schema", "the source has no table %s.%s: is %q Vtiger's database?", cfg.Vtiger.Schema, crmentity, cfg.Vtiger.Schema)
		}
	}
	e.m = newMetrics(deps.Registerer, e)
	for _, r := range e.rules {
		e.m.initRule(r)
	}
	return e, nil
}

// checkVtigerTable accepts a preset rule on one of the module's tables (or
// crmentity), or on a glob.
func checkVtigerTable(pattern string, m *vtModule) error {
	if strings.ContainsAny(pattern, "*?[") {
		return nil
	}
	t := pattern
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	if m.keyColumn(t) != "" {
		return nil
	}
	return fmt.Errorf("%s builds %s records: the rule's table must be one of %s, not %s",
		"the preset", m.module, strings.Join(m.tables(), ", "), t)
}

// Resume tells the engine where reading starts (the checkpoint the reader
// resumes from), so that Hold can name a position before a settle window
// opened by the very first transaction. Call it before the first Process.
func (e *Engine) Resume(from cdc.Checkpoint) {
	e.mu.Lock()
	e.lastCP = from
	e.mu.Unlock()
}

// rulesFor returns the rules whose table pattern matches, in config order;
// computed once per table, so rules on other tables cost nothing per row.
func (e *Engine) rulesFor(schema, table string) []*rule {
	if e.last.ok && e.last.schema == schema && e.last.table == table {
		return e.last.rules
	}
	rs := e.rulesForKey(schema, table)
	e.last.ok, e.last.schema, e.last.table, e.last.rules = true, schema, table, rs
	return rs
}

func (e *Engine) rulesForKey(schema, table string) []*rule {
	key := schema + "." + table
	if rs, ok := e.matched[key]; ok {
		return rs
	}
	var rs []*rule
	rs = append(rs, e.exact[key]...)
	rs = append(rs, e.byName[table]...)
	for _, r := range e.globs {
		pat, target := r.cfg.Table, key
		if !strings.Contains(pat, ".") {
			target = table
		}
		if ok, _ := path.Match(pat, target); ok {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].idx < rs[j].idx })
	e.matched[key] = rs
	return rs
}

// Process evaluates one committed transaction and returns the events that
// are ready, in binlog order: events of this transaction, and of earlier
// ones whose settle window this transaction's commit time closed. On error
// the engine must be discarded (restart from the last durable checkpoint).
func (e *Engine) Process(ctx context.Context, tx *cdc.Transaction) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vt != nil {
		// A transaction committed at or after a window's end is not part of
		// it: close due windows first.
		if err := e.closeDue(ctx, tx.Timestamp); err != nil {
			return nil, err
		}
	}
	for i := range tx.Changes {
		ch := &tx.Changes[i]
		if e.skip(ch) {
			// rowhook's own write fires nothing, but a record being
			// collected shows it.
			if e.vt != nil {
				e.vt.track(ch, tx.Timestamp, e.lastCP, false)
			}
			continue
		}
		var win *vtWindow
		if e.vt != nil {
			win = e.vt.track(ch, tx.Timestamp, e.lastCP, true)
		}
		rs := e.rulesFor(ch.Schema, ch.Table)
		if len(rs) == 0 {
			continue
		}
		bit := opBit(ch.Op)
		bound := false
		e.memo = changeMemo{}
		for _, r := range rs {
			if r.ops&bit == 0 {
				continue
			}
			if r.prog != nil {
				if !bound {
					e.env.bind(e.ec, ch, e.loc)
					bound = true
				}
				out, err := e.machine.Run(r.prog, e.env)
				if err != nil {
					e.m.conditionErrors.WithLabelValues(r.cfg.Name).Inc()
					e.logger.Warn("rule condition failed; the rule does not fire for this change",
						"rule", r.cfg.Name, "change", ch.ID, "table", ch.Schema+"."+ch.Table, "error", err)
					continue
				}
				if ok, _ := out.(bool); !ok {
					continue
				}
			}
			if err := e.fire(ctx, r, ch, win); err != nil {
				e.dropOut()
				return nil, err
			}
		}
	}
	if !tx.Checkpoint.IsZero() {
		e.lastCP = tx.Checkpoint
	}
	return e.release(), nil
}

// fire queues the event of rule r for change ch.
func (e *Engine) fire(ctx context.Context, r *rule, ch *cdc.Change, win *vtWindow) error {
	ev := Event{
		Rule:      r.cfg.Name,
		Name:      r.body.name,
		Webhooks:  r.cfg.Webhooks,
		Change:    ch,
		Once:      r.cfg.Once,
		Timestamp: ch.Timestamp,
	}
	if e.memo.key == "" {
		ev.ID, e.memo.key = e.idAndKey(ch, r.cfg.Name)
	} else {
		ev.ID = ch.ID + ":" + r.cfg.Name
	}
	ev.Key = e.memo.key
	drifted := e.checkColumns(r, ch)
	if m := r.body.vtiger; m != nil {
		if win == nil || !win.accepts(m) {
			e.logger.Warn("preset rule fired on a change the Vtiger tracker does not hold; no event",
				"rule", r.cfg.Name, "change", ch.ID, "table", ch.Schema+"."+ch.Table)
			return nil
		}
		for _, p := range win.pending {
			if p.rule == r {
				// One event per rule and record per window: the body
				// describes the record at the window's end anyway.
				return nil
			}
		}
		ev.Key = ch.Schema + "." + m.table + ":" + strconv.FormatInt(win.rec.crmid, 10)
		q := &queued{rule: r, ev: ev, win: win}
		win.pending = append(win.pending, q)
		e.queue = append(e.queue, q)
		return nil
	}
	if r.body.pure && e.memo.bodyFunc == r.body {
		// Same body function on the same change: same body (a copy of
		// the field list, so one event's Set does not touch another's).
		ev.Body = append(Body(nil), e.memo.body...)
		if drifted {
			r.bodyErrors.Inc()
		}
		e.ready(r, &ev)
		return nil
	}
	if e.eval == nil {
		e.eval = newBodyEval()
	}
	e.in = buildInput{change: ch, source: e.source, loc: e.loc, lookup: e.lookupStub[r.body.name], boxes: &e.boxes, eval: e.eval}
	body, err := r.body.build(ctx, &e.in)
	e.in = buildInput{}
	if err = e.bodyError(r, ch, err, drifted); err != nil {
		return err
	}
	if r.body.pure {
		e.memo.bodyFunc, e.memo.body = r.body, body
	}
	ev.Body = body
	e.ready(r, &ev)
	return nil
}

// ready adds ev, ready to leave, behind the events already waiting.
func (e *Engine) ready(r *rule, ev *Event) {
	if len(e.queue) == 0 {
		e.out = append(e.out, *ev)
		e.outRules = append(e.outRules, r)
		return
	}
	e.queue = append(e.queue, &queued{rule: r, ev: *ev, ready: true})
}

// idAndKey returns the id of rule's event for ch and the record key
// (recordKey), in one allocation.
func (e *Engine) idAndKey(ch *cdc.Change, rule string) (id, key string) {
	b := append(e.idBuf[:0], ch.ID...)
	b = append(b, ':')
	b = append(b, rule...)
	n := len(b)
	b = appendRecordKey(b, ch)
	e.idBuf = b
	s := string(b)
	return s[:n], s[n:]
}

// bodyError logs a body's field errors (the event goes out with those
// fields null: a deterministic expression error would otherwise stop the
// pipeline for good) and returns any other error. An event with a failed
// field or a field reading a missing column (drifted) counts once.
func (e *Engine) bodyError(r *rule, ch *cdc.Change, err error, drifted bool) error {
	if err == nil {
		if drifted {
			r.bodyErrors.Inc()
		}
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		r.bodyErrors.Inc()
		e.logger.Warn("body field failed; sent as null", "rule", r.cfg.Name, "change", ch.ID, "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("rules: rule %s, change %s: %w", r.cfg.Name, ch.ID, err)
	}
	if drifted {
		r.bodyErrors.Inc()
	}
	return nil
}

// recordKey is cdc.Change.Key without fmt for the usual integer and
// string keys (same result).
func recordKey(c *cdc.Change) string {
	return string(appendRecordKey(make([]byte, 0, len(c.Schema)+len(c.Table)+2+12*len(c.PKColumns)), c))
}

// appendRecordKey appends recordKey(c) to b.
func appendRecordKey(b []byte, c *cdc.Change) []byte {
	b = append(b, c.Schema...)
	b = append(b, '.')
	b = append(b, c.Table...)
	b = append(b, ':')
	for i, col := range c.PKColumns {
		if i > 0 {
			b = append(b, ',')
		}
		switch v := c.PK[col].(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case string:
			b = append(b, v...)
		default:
			b = fmt.Append(b, v)
		}
	}
	return b
}

// dropOut empties out, keeping its array unless a huge transaction grew
// it.
func (e *Engine) dropOut() {
	clear(e.out)
	clear(e.outRules)
	e.out, e.outRules = e.out[:0], e.outRules[:0]
	if cap(e.out) > 4096 {
		e.out, e.outRules = nil, nil
	}
}

// release returns the events collected in out and pops the ready prefix
// of the queue, in that order.
func (e *Engine) release() []Event {
	n := 0
	for n < len(e.queue) && e.queue[n].ready {
		n++
	}
	if n == 0 && len(e.out) == 0 {
		return nil
	}
	out := make([]Event, len(e.out), len(e.out)+n)
	copy(out, e.out)
	for _, r := range e.outRules {
		r.events.Inc()
	}
	e.dropOut()
	for _, q := range e.queue[:n] {
		if !q.drop {
			q.rule.events.Inc()
			out = append(out, q.ev)
		}
	}
	clear(e.queue[:n])
	e.queue = e.queue[n:]
	if len(e.queue) == 0 {
		e.queue = e.queue[:0:0]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Flush closes settle windows that are due when the source is idle (now is
// the wall clock while caught up) and returns the events that became ready.
func (e *Engine) Flush(ctx context.Context, now time.Time) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vt == nil {
		return e.release(), nil
	}
	if err := e.closeDue(ctx, now); err != nil {
		return nil, err
	}
	return e.release(), nil
}

// Hold returns the checkpoint a restart must resume from so that every
// change still held in an open settle window is read again; ok is false
// when nothing is held (resume after the last processed transaction).
func (e *Engine) Hold() (cdc.Checkpoint, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vt == nil || len(e.vt.order) == 0 {
		return cdc.Checkpoint{}, false
	}
	return e.vt.order[0].hold, true
}

// Pending reports how many events are held (waiting for a settle window or
// behind one), for metrics and tests.
func (e *Engine) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

// closeDue closes the windows whose settle time has passed at t.
func (e *Engine) closeDue(ctx context.Context, t time.Time) error {
	for len(e.vt.order) > 0 {
		w := e.vt.order[0]
		if t.Before(w.opened.Add(e.settle)) {
			return nil
		}
		if err := e.closeWindow(ctx, w); err != nil {
			return err
		}
		e.vt.order[0] = nil
		e.vt.order = e.vt.order[1:]
		delete(e.vt.windows, w.key)
	}
	return nil
}

// closeWindow decides each held event of the window and builds its body
// from the assembled record.
func (e *Engine) closeWindow(ctx context.Context, w *vtWindow) error {
	if len(w.pending) == 0 {
		return nil
	}
	rec := w.rec
	if err := e.complete(ctx, rec, w.mod); err != nil {
		return err
	}
	for _, q := range w.pending {
		m := q.rule.body.vtiger
		q.ready = true
		reason := ""
		switch {
		case rec.setype() != "" && rec.setype() != m.module:
			reason = "other_module"
		case rec.rows[m.table] == nil && rec.rows[crmentity] == nil:
			reason = "no_record"
		case q.rule.body.kind == kindNew && rec.deleted():
			reason = "deleted"
		case q.rule.body.kind == kindUpdated && rec.deleted():
			reason = "deleted"
		case q.rule.body.kind == kindUpdated && rec.created:
			reason = "created_in_window"
		case q.rule.body.kind == kindDeleted && !rec.deleted():
			reason = "restored"
		case q.rule.body.kind == kindDeleted && rec.created:
			reason = "created_in_window"
		}
		if reason != "" {
			q.drop = true
			e.m.dropped.WithLabelValues(q.rule.cfg.Name, reason).Inc()
			continue
		}
		body, err := q.rule.body.build(ctx, &buildInput{change: q.ev.Change, record: rec, module: m, source: e.source, loc: e.loc})
		if err = e.bodyError(q.rule, q.ev.Change, err, false); err != nil {
			return err
		}
		q.ev.Body = body
	}
	return nil
}
