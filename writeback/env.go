package writeback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Response is what the web service answered to a successful delivery.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the raw response body (as read, size-limited by the caller).
	Body []byte
	// SOAP is the parsed SOAP result for SOAP webhooks (element name → text
	// or nested map, lists for repeated elements); nil otherwise.
	SOAP map[string]any
}

// Env is what mapping expressions see.
type Env struct {
	// Response is `response`.
	Response ResponseEnv `expr:"response"`
	// Row is `row`: the row image the rule fired on (After, Before on delete).
	Row map[string]any `expr:"row"`
	// Old is `old`: the row before an update (empty on insert).
	Old map[string]any `expr:"old"`
}

// ResponseEnv is `response` in mapping expressions.
type ResponseEnv struct {
	// Status is `response.status`.
	Status int `expr:"status"`
	// Headers is `response.headers`: `response.headers["X-Erp-Id"]` or
	// `response.headers.Get("x-erp-id")`, names in any case.
	Headers Headers `expr:"headers"`
	// Body is `response.body`, the raw body as a string.
	Body string `expr:"body"`
	// JSON is `response.json`, the body parsed as JSON (nil when it is not
	// JSON): objects are maps, so `response.json.data.id` works.
	JSON any `expr:"json"`
	// SOAP is `response.soap`, the parsed SOAP result tree.
	SOAP map[string]any `expr:"soap"`
}

// Headers are response headers by lower-case name; several values of one
// header are joined with ", " as HTTP allows.
type Headers map[string]string

// Get returns the header named name, in any letter case ("" when absent).
func (h Headers) Get(name string) string { return h[strings.ToLower(name)] }

func newHeaders(h http.Header) Headers {
	out := make(Headers, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return out
}

// NewEnv builds the expression environment for one response and row change.
func NewEnv(resp Response, row, old map[string]any) Env {
	if row == nil {
		row = map[string]any{}
	}
	if old == nil {
		old = map[string]any{}
	}
	soap := resp.SOAP
	if soap == nil {
		soap = map[string]any{}
	}
	return Env{
		Response: ResponseEnv{
			Status:  resp.Status,
			Headers: newHeaders(resp.Header),
			Body:    string(resp.Body),
			JSON:    decodeJSON(resp.Body),
			SOAP:    soap,
		},
		Row: row,
		Old: old,
	}
}

// decodeJSON parses body; nil when it is empty or not JSON. Integers that fit
// int64 become int, larger ones stay exact as their decimal text, and other
// numbers become float64.
func decodeJSON(body []byte) any {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || !json.Valid(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return fixNumbers(v)
}

func fixNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = fixNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = fixNumbers(e)
		}
		return x
	case json.Number:
		return number(string(x))
	}
	return v
}

// number renders a JSON number: int when integral and in range, the exact
// text for larger integers, float64 otherwise.
func number(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return int(i)
	}
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return f
}

// jsonPath is the `jsonPath(response.body, "data.items.0.id")` helper: a
// gjson path into a JSON text; nil when the path does not exist.
func jsonPath(body, path string) any {
	r := gjson.Get(body, path)
	switch r.Type {
	case gjson.Null:
		return nil
	case gjson.False:
		return false
	case gjson.True:
		return true
	case gjson.Number:
		return number(r.Raw)
	case gjson.String:
		return r.Str
	default: // JSON object or array
		return decodeJSON([]byte(r.Raw))
	}
}

// jsonRaw is `jsonRaw(response.body, path)`: the JSON text at path, exactly
// as written (a number keeps all its digits; an object stays JSON), "" when
// absent. Strings are unquoted.
func jsonRaw(body, path string) string {
	r := gjson.Get(body, path)
	if !r.Exists() {
		return ""
	}
	if r.Type == gjson.String {
		return r.Str
	}
	return r.Raw
}

func exprOptions(asBool bool) []expr.Option {
	opts := []expr.Option{
		expr.Env(Env{}),
		expr.Function("jsonPath", func(args ...any) (any, error) {
			return jsonPath(args[0].(string), args[1].(string)), nil
		}, new(func(string, string) any)),
		expr.Function("jsonRaw", func(args ...any) (any, error) {
			return jsonRaw(args[0].(string), args[1].(string)), nil
		}, new(func(string, string) string)),
		expr.Function("toJSON", func(args ...any) (any, error) {
			b, err := json.Marshal(args[0])
			if err != nil {
				return nil, fmt.Errorf("toJSON: %w", err)
			}
			return string(b), nil
		}, new(func(any) string)),
	}
	opts = append(opts, expr.Patch(headerKeys{}))
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return opts
}

// headerKeys lower-cases constant header names in `response.headers["X-Erp-Id"]`
// and `response.headers.x_erp_id`, so that header lookup by index ignores
// case as HTTP does (the map's keys are lower case).
type headerKeys struct{}

var _ ast.Visitor = headerKeys{}

// Visit implements ast.Visitor.
func (headerKeys) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok || prop.Value == "Get" {
		return
	}
	parent, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return
	}
	if name, ok := parent.Property.(*ast.StringNode); !ok || name.Value != "headers" {
		return
	}
	if id, ok := parent.Node.(*ast.IdentifierNode); ok && id.Value == "response" {
		prop.Value = strings.ToLower(prop.Value)
	}
}

// envNames are the names mapping expressions see besides expr's
// builtins, for "did you mean" hints.
var envNames = []string{"response", "row", "old", "jsonPath", "jsonRaw", "toJSON"}

// compileExpr compiles one mapping expression; errors are path errors with
// the column offset of the problem.
func compileExpr(path, src string, asBool bool) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, yamlconf.Errf(path, "empty expression")
	}
	prog, err := expr.Compile(src, exprOptions(asBool)...)
	if err == nil {
		return prog, nil
	}
	var fe *file.Error
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if strings.HasPrefix(msg, "unknown name ") {
		name := strings.Fields(strings.TrimPrefix(msg, "unknown name "))[0]
		if near := nearMatches(name, envNames); len(near) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(near, ", "))
		} else {
			msg += " (expressions see response, row, old, jsonPath, jsonRaw, toJSON)"
		}
	}
	if strings.HasPrefix(msg, "expected bool, but got") {
		msg += " (when must be true or false, e.g. response.status == 201)"
	}
	pe := &yamlconf.PathError{Path: path, Err: errors.New(msg)}
	if fe != nil {
		if fe.Line <= 1 {
			pe.Offset = fe.Column
		} else {
			pe.Err = fmt.Errorf("%s (line %d, column %d of the expression)", msg, fe.Line, fe.Column+1)
		}
	}
	return nil, pe
}

// nearMatches returns the candidates within a small edit distance of name
// (or sharing a long prefix with it), closest first, at most three.
func nearMatches(name string, candidates []string) []string {
	type cand struct {
		s string
		d int
	}
	var cs []cand
	ln := strings.ToLower(name)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := levenshtein(ln, lc)
		limit := max(1, min(3, len(name)/3))
		if d <= limit || (len(ln) >= 4 && (strings.HasPrefix(lc, ln) || strings.HasPrefix(ln, lc) && len(lc) >= 4)) {
			cs = append(cs, cand{c, d})
		}
	}
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && (cs[j].d < cs[j-1].d || cs[j].d == cs[j-1].d && cs[j].s < cs[j-1].s); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	// A clearly closer name hides the rest.
	var out []string
	for i := 0; i < len(cs) && i < 3 && cs[i].d <= cs[0].d+1; i++ {
		out = append(out, cs[i].s)
	}
	return out
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// isIntegral reports whether f has no fractional part and fits int64.
func isIntegral(f float64) bool {
	return f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64
}
