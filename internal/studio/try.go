package studio

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

// inlineName is the body function name a rule's inline `body:` fields
// get: the rule's name made an identifier, plus "_body" (the name the
// YAML block gives it too).
func inlineName(rule string) string {
	b := []byte(rule)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		b = append([]byte("_"), b...)
	}
	return string(b) + "_body"
}

// DefaultBudget is how long one evaluation may run.
const DefaultBudget = 3 * time.Second

// Deps are what the evaluator evaluates against.
type Deps struct {
	// Rules is the running configuration's rules section: its bodies,
	// vtiger settings and timezone are used; its rules are not.
	Rules rules.Config
	// Webhooks, Delivery and Encoders render the requests (dispatch.Preview).
	Webhooks map[string]dispatch.WebhookConfig
	Delivery dispatch.DeliveryConfig
	Encoders map[string]dispatch.EncoderFactory
	// Source, when set, checks column names as rowhook check does.
	Source *sql.DB
	// Columns, used when Source is nil, returns the column names of the
	// tables a rule's table pattern names (Ring.ColumnsFor), nil if unknown.
	Columns func(pattern string) []string
	// Changes returns the recent changes to evaluate over, in binlog order.
	Changes func() []cdc.Change
	// Budget bounds one evaluation's time; 0 means DefaultBudget. expr's
	// VM memory budget bounds each expression's allocations.
	Budget time.Duration
}

// Studio evaluates rules under edit over recent changes. One evaluation
// runs at a time: an expression the budget could not stop keeps later ones
// out (503) rather than piling up.
type Studio struct {
	deps Deps
	sem  chan struct{}
}

// New returns a Studio.
func New(deps Deps) *Studio {
	if deps.Budget <= 0 {
		deps.Budget = DefaultBudget
	}
	return &Studio{deps: deps, sem: make(chan struct{}, 1)}
}

// RuleDoc is the rule under edit, in the config's YAML (or JSON) form:
// one entry of rules:, with the body's fields inline under body: as an
// alternative to event:.
type RuleDoc struct {
	Name     string       `yaml:"name"`
	Table    string       `yaml:"table"`
	On       []string     `yaml:"on"`
	When     string       `yaml:"when"`
	Event    string       `yaml:"event"`
	Body     rules.Fields `yaml:"body"`
	Webhooks []string     `yaml:"webhooks"`
	Once     bool         `yaml:"once"`
}

// Problem is a located error in the rule under edit.
type Problem struct {
	// Line and Col are 1-based in the rule text; 0 when unknown.
	Line int `json:"line"`
	Col  int `json:"col"`
	// Path is the key ("when", "body.total", "webhooks[0]").
	Path string `json:"path"`
	// Offset is the character offset inside the value at Path (the
	// expression), for an editor to mark; 0 when unknown.
	Offset  int    `json:"offset"`
	Message string `json:"message"`
}

// Match is one event the rule would produce.
type Match struct {
	ID    string     `json:"id"`
	Key   string     `json:"key"`
	Table string     `json:"table"`
	Op    cdc.Op     `json:"op"`
	TS    time.Time  `json:"ts"`
	File  string     `json:"file"`
	Pos   uint32     `json:"pos"`
	Body  rules.Body `json:"body"`
	// Suppressed is set when once: would keep this event (an earlier one
	// for the same record in the changes evaluated).
	Suppressed string                    `json:"suppressed,omitempty"`
	Requests   []dispatch.PreviewRequest `json:"requests"`
}

// Result is the answer to a rule that compiled.
type Result struct {
	Scanned int `json:"scanned"`
	// From and To are the commit times of the oldest and newest change
	// evaluated (absent when there were none).
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
	Matches []Match    `json:"matches"`
	// Warnings are evaluation errors (a condition failing on a change, an
	// expression over its memory budget), each once.
	Warnings []string `json:"warnings,omitempty"`
	YAML     string   `json:"yaml"`
	// Running is the same block for the running config's rule of the same
	// name ("" when there is none), for a diff.
	Running string `json:"running,omitempty"`
}

// ErrBusy: an earlier evaluation is still running.
var ErrBusy = errors.New("studio: an earlier evaluation is still running (an expression that does not end?); try again shortly")

// Try compiles src and evaluates it over the recent changes. A rule that
// does not compile, or an evaluation stopped by the budget, returns
// problems; err is for ErrBusy and other failures of the studio itself.
func (s *Studio) Try(ctx context.Context, src []byte) (*Result, []Problem, error) {
	var rd RuleDoc
	doc, err := yamlconf.ParseEnv("rule", bytes.NewReader(src), &rd, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, problems(err), nil
	}
	if strings.TrimSpace(string(src)) == "" {
		return nil, []Problem{{Line: 1, Col: 1, Message: "empty rule: give at least table: and when:"}}, nil
	}
	if rd.Name == "" {
		rd.Name = "studio"
	}
	cfg := s.deps.Rules
	cfg.Rules = nil
	cfg.Bodies = maps.Clone(cfg.Bodies)
	if cfg.Bodies == nil {
		cfg.Bodies = map[string]rules.BodyConfig{}
	}
	var probs []Problem
	inline := ""
	switch {
	case len(rd.Body) > 0 && rd.Event != "":
		probs = append(probs, locate(doc, yamlconf.Errf("event", "give event: (a body function) or body: (fields), not both")))
	case len(rd.Body) == 0 && rd.Event == "":
		// Nothing to build the body with yet: show the row.
		rd.Body = rules.Fields{{Name: "row", Expr: "row"}}
		fallthrough
	case len(rd.Body) > 0:
		rd.Event = s.inlineFor(rd.Name)
		inline = rd.Event
		cfg.Bodies[inline] = rules.BodyConfig{Fields: rd.Body}
	}
	for i, w := range rd.Webhooks {
		if _, ok := s.deps.Webhooks[w]; !ok {
			names := make([]string, 0, len(s.deps.Webhooks))
			for n := range s.deps.Webhooks {
				names = append(names, n)
			}
			probs = append(probs, locate(doc, yamlconf.Errf(fmt.Sprintf("webhooks[%d]", i), "unknown webhook %q%s", w, yamlconf.Suggest(w, names))))
		}
	}
	rc := rules.RuleConfig{Name: rd.Name, Table: rd.Table, On: rd.On, When: rd.When, Event: rd.Event, Webhooks: rd.Webhooks, Once: rd.Once}
	cfg.Rules = []rules.RuleConfig{rc}
	col := &collector{}
	eng, err := rules.New(ctx, cfg, rules.Deps{Source: s.deps.Source, Logger: slog.New(col)})
	if err != nil {
		probs = append(probs, locateAll(doc, err, inline)...)
	}
	if err == nil && s.deps.Source == nil && s.deps.Columns != nil {
		// Offline: column names checked against those the binlog showed.
		if err := cfg.CheckColumns(s.deps.Columns); err != nil {
			probs = append(probs, locateAll(doc, err, inline)...)
		}
	}
	if len(probs) > 0 {
		return nil, probs, nil
	}

	select {
	case s.sem <- struct{}{}:
	default:
		return nil, nil, ErrBusy
	}
	ectx, cancel := context.WithTimeout(ctx, s.deps.Budget)
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() { <-s.sem }()
		res, err := s.evaluate(ectx, eng, rc)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			if errors.Is(o.err, context.DeadlineExceeded) {
				return nil, []Problem{budgetProblem(doc, s.deps.Budget)}, nil
			}
			return nil, nil, o.err
		}
		o.res.Warnings = col.messages()
		o.res.YAML = ruleYAML(rd, inline)
		o.res.Running = s.runningYAML(rd.Name)
		return o.res, nil, nil
	case <-ectx.Done():
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, []Problem{budgetProblem(doc, s.deps.Budget)}, nil
	}
}

func budgetProblem(doc *yamlconf.Doc, budget time.Duration) Problem {
	p := locate(doc, yamlconf.Errf("when", "evaluation stopped: over its time budget of %s (an expression that loops over large ranges?)", budget))
	return p
}

// evaluate runs the engine over the changes as replay runs it over files.
func (s *Studio) evaluate(ctx context.Context, eng *rules.Engine, rc rules.RuleConfig) (*Result, error) {
	changes := s.deps.Changes()
	res := &Result{Scanned: len(changes), Matches: []Match{}}
	if n := len(changes); n > 0 {
		from, to := changes[0].Timestamp.UTC(), changes[n-1].Timestamp.UTC()
		res.From, res.To = &from, &to
	}
	seen := map[string]bool{}
	emit := func(evs []rules.Event) {
		for i := range evs {
			ev := &evs[i]
			m := Match{ID: ev.ID, Key: ev.Key, TS: ev.Timestamp.UTC(), Body: ev.Body, Requests: []dispatch.PreviewRequest{}}
			if ev.Change != nil {
				m.Table, m.Op, m.File, m.Pos = ev.Change.Schema+"."+ev.Change.Table, ev.Change.Op, ev.Change.File, ev.Change.Pos
			}
			if ev.Once {
				if seen[ev.Key] {
					m.Suppressed = "once: an earlier event of this rule for the same record"
				}
				seen[ev.Key] = true
			}
			if m.Suppressed == "" {
				for _, w := range ev.Webhooks {
					m.Requests = append(m.Requests, dispatch.Preview(w, s.deps.Webhooks[w], s.deps.Delivery, s.deps.Encoders, ev))
				}
			}
			res.Matches = append(res.Matches, m)
		}
	}
	var last time.Time
	for i := 0; i < len(changes); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := i + 1
		for j < len(changes) && changes[j].Tx == changes[i].Tx && changes[i].Tx != "" {
			j++
		}
		c := changes[i]
		tx := &cdc.Transaction{ID: c.Tx, GTID: c.GTID, Timestamp: c.Timestamp, Changes: append([]cdc.Change(nil), changes[i:j]...),
			Checkpoint: cdc.Checkpoint{File: c.File, Pos: c.Pos, Timestamp: c.Timestamp}}
		last = c.Timestamp
		evs, err := eng.Process(ctx, tx)
		if err != nil {
			return nil, err
		}
		emit(evs)
		i = j
	}
	// The end of the changes is the source going idle, as in replay:
	// settle windows close (simulated; nothing is kept).
	evs, err := eng.Flush(ctx, last.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	emit(evs)
	return res, ctx.Err()
}

// remap renames the paths rules.New reports for the one-rule config into
// the rule document's own paths.
func remap(err error, inline string) error {
	var out []error
	walk(err, func(e error) {
		var pe *yamlconf.PathError
		if errors.As(e, &pe) {
			p := pe.Path
			p = strings.TrimPrefix(strings.TrimPrefix(p, "rules[0]"), ".")
			if rest, ok := strings.CutPrefix(p, "bodies."+inline); ok && inline != "" {
				p = "body" + strings.TrimPrefix(rest, ".fields")
			}
			out = append(out, &yamlconf.PathError{Path: p, Offset: pe.Offset, Err: pe.Err})
			return
		}
		out = append(out, e)
	})
	return errors.Join(out...)
}

func walk(err error, fn func(error)) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			walk(e, fn)
		}
		return
	}
	if err != nil {
		fn(err)
	}
}

// locateAll turns the compiler's errors for the one-rule config into
// problems located in the rule text, with the offset inside the value.
func locateAll(doc *yamlconf.Doc, err error, inline string) []Problem {
	re := remap(err, inline)
	located := problems(doc.Locate(re))
	var offsets []int
	walk(re, func(e error) {
		var pe *yamlconf.PathError
		if errors.As(e, &pe) {
			offsets = append(offsets, pe.Offset)
		} else {
			offsets = append(offsets, 0)
		}
	})
	if len(offsets) == len(located) {
		for i := range located {
			located[i].Offset = offsets[i]
		}
	}
	return located
}

func locate(doc *yamlconf.Doc, err error) Problem {
	ps := problems(doc.Locate(err))
	if len(ps) == 0 {
		return Problem{Message: err.Error()}
	}
	return ps[0]
}

func problems(err error) []Problem {
	var out []Problem
	walk(err, func(e error) {
		var ye *yamlconf.Error
		if errors.As(e, &ye) {
			out = append(out, Problem{Line: ye.Pos.Line, Col: ye.Pos.Col, Path: ye.Path, Message: ye.Err.Error()})
			return
		}
		out = append(out, Problem{Message: e.Error()})
	})
	return out
}

// collector gathers the engine's warnings (conditions failing on a change).
type collector struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

func (c *collector) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *collector) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" || a.Key == "change" {
			msg += "; " + a.Key + ": " + a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if !c.seen[msg] && len(c.list) < 20 {
		c.seen[msg] = true
		c.list = append(c.list, msg)
	}
	return nil
}
func (c *collector) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *collector) WithGroup(string) slog.Handler      { return c }
func (c *collector) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// runningYAML is the YAML block of the running config's rule called name,
// with its body's fields when its body function is defined in YAML.
func (s *Studio) runningYAML(name string) string {
	for _, r := range s.deps.Rules.Rules {
		if r.Name != name {
			continue
		}
		rd := RuleDoc{Name: r.Name, Table: r.Table, On: r.On, When: r.When, Event: r.Event, Webhooks: r.Webhooks, Once: r.Once}
		inline := ""
		if bc, ok := s.deps.Rules.Bodies[r.Event]; ok {
			rd.Body, inline = bc.Fields, r.Event
		}
		return ruleYAML(rd, inline)
	}
	return ""
}

// inlineFor names the inline body of the rule called name: the running
// rule's YAML body function when it has one (so the block replaces it),
// else inlineName.
func (s *Studio) inlineFor(name string) string {
	for _, r := range s.deps.Rules.Rules {
		if _, ok := s.deps.Rules.Bodies[r.Event]; ok && r.Name == name {
			return r.Event
		}
	}
	return inlineName(name)
}
