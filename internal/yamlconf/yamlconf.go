// Package yamlconf loads rowhook's YAML configuration with positions: every
// error names the file, line and column and the key path
// ("rowhook.yaml:14:11: rules[2].when: unknown name \"amout\"").
//
// ${VAR}, ${VAR:-default} and ${file:PATH} (a secret file's content, one
// trailing newline removed) are expanded inside scalar values after parsing,
// so a secret containing YAML syntax (": ", "#") cannot change the document's
// structure, and positions stay those of the file as written.
//
// A configuration is bounded: at most MaxSize bytes, and at most
// MaxAliasNodes nodes reached through aliases (*name), so a small file
// cannot expand into billions of nodes (an "alias bomb").
package yamlconf

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// MaxSize is the largest configuration file accepted, in bytes (8 MB).
	MaxSize = 8 << 20
	// MaxErrors is how many errors Parse lists; past it, it says how many
	// more there are. (A file of a million misplaced values would
	// otherwise print a million lines.)
	MaxErrors = 10_000
	// MaxAliasNodes bounds how many nodes aliases may add to a document:
	// each *name counts the nodes of its anchor's value, nested aliases
	// expanded. Real configs reuse a few small blocks and stay far below.
	MaxAliasNodes = 10_000
)

// Doc is a parsed configuration document and the positions of its values.
type Doc struct {
	// File is the name used in error messages.
	File string
	// places is where the value at each key path ("rules[2].when") is
	// written, aliases resolved to their anchor's value. It (with the
	// few scalars in expanded) is all a Doc keeps of the parsed document,
	// so a large config's node tree is garbage once decoded.
	places map[string]place
	// keyCol is the smallest column of a mapping key on each line and
	// nodeCol that of any node, for errors yaml.v3 reports by line only.
	keyCol, nodeCol map[int]int
	// expanded holds the text as written of the scalars that came from
	// ${VAR}, for Decode's messages (the values may be secrets).
	expanded map[*yaml.Node]string
	// Unexpanded are the key paths whose ${...} could not be expanded and
	// were left empty (LoadPartial), in file order.
	Unexpanded []string
}

// place is the position of a value and what Locate needs to add a column
// offset inside it.
type place struct {
	line, col int32
	// oneLine is a scalar on a single line; quoted, one in quotes.
	oneLine, quoted bool
}

// Pos is a 1-based line and column.
type Pos struct{ Line, Col int }

// Error is a configuration error at a place in a file.
type Error struct {
	File string
	Pos  Pos
	// Path is the key path ("rules[2].when"); empty for document-level errors.
	Path string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and parses the file at path into v.
func Load(path string, v any) (*Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	return Parse(path, f, v)
}

// Parse parses YAML from r into v. name is used in error messages. Unknown
// keys are errors. Environment variables are looked up with os.LookupEnv.
func Parse(name string, r io.Reader, v any) (*Doc, error) {
	return ParseEnv(name, r, v, os.LookupEnv)
}

// LoadPartial is Load for a command that uses only part of the file
// (rowhook test evaluates rules offline and needs no source password): a
// ${VAR} or ${file:PATH} that cannot be expanded (unset, unreadable) in a
// value at a key path for which unused is true is left empty (null)
// instead of failing, and Doc.Unexpanded names it. Everything else is
// checked as Load checks it.
func LoadPartial(path string, v any, unused func(path string) bool) (*Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	return parse(path, f, v, os.LookupEnv, unused)
}

// ParseEnv is Parse with an explicit environment lookup.
func ParseEnv(name string, r io.Reader, v any, lookup func(string) (string, bool)) (*Doc, error) {
	return parse(name, r, v, lookup, nil)
}

func parse(name string, r io.Reader, v any, lookup func(string) (string, bool), unused func(string) bool) (*Doc, error) {
	src, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	d := &Doc{File: name, places: map[string]place{}, keyCol: map[int]int{}, nodeCol: map[int]int{}}
	if len(src) > MaxSize {
		return d, &Error{File: name, Err: fmt.Errorf("larger than %d MB, the limit for a config file", MaxSize>>20)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return d, d.syntaxError(src, err)
	}
	if len(root.Content) == 0 {
		return d, nil
	}
	if err := d.checkAliases(root.Content[0]); err != nil {
		return d, err
	}
	var errs []error
	more := 0                           // errors past MaxErrors, counted only
	expanded := map[*yaml.Node]string{} // expanded scalar -> its text as written
	d.expanded = expanded
	d.walk(root.Content[0], "", func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "${") {
			return
		}
		if _, done := expanded[n]; done {
			return // an anchored value met again through an alias
		}
		val, err := expand(n.Value, lookup)
		if err != nil && unused != nil && unused(path) {
			expanded[n] = n.Value
			d.Unexpanded = append(d.Unexpanded, path)
			n.Value, n.Tag, n.Style = "", "!!null", 0
			return
		}
		if err != nil {
			if len(errs) >= MaxErrors {
				more++
			} else {
				errs = append(errs, d.Errorf(path, "%v", err))
			}
			return
		}
		expanded[n] = n.Value
		n.Value = val
		// An expanded value is data, not YAML: keep strings strings.
		if n.Tag == "" || n.Tag == "!!str" {
			n.Style = yaml.DoubleQuotedStyle
			n.Tag = "!!str"
			if looksTyped(val) {
				n.Tag = ""
				n.Style = 0
			}
		}
	})
	if more > 0 {
		errs = append(errs, d.moreErrors(more))
	}
	if len(errs) > 0 {
		return d, errors.Join(errs...)
	}
	// Unknown keys and values of the wrong shape, by key path; yaml.v3's
	// own complaints name Go types ("into time.Duration") and show
	// expanded values, so the decoder's are kept only for lines the walk
	// found nothing wrong on.
	reported := map[int]bool{}
	s := shapeCheck{types: true, expanded: expanded, report: func(at *yaml.Node, path, msg string) {
		reported[at.Line] = true
		if len(errs) >= MaxErrors {
			more++
			return
		}
		errs = append(errs, &Error{File: d.File, Pos: Pos{at.Line, at.Column}, Path: path, Err: errors.New(msg)})
	}}
	s.check(root.Content[0], reflect.TypeOf(v), "")
	if more > 0 {
		// Not worth decoding: say how much more is wrong.
		return d, errors.Join(append(errs, d.moreErrors(more))...)
	}
	if err := root.Content[0].Decode(v); err != nil {
		var te *yaml.TypeError
		msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
		if errors.As(err, &te) {
			msgs = te.Errors
		}
		for _, msg := range msgs {
			if m := lineRef.FindStringSubmatch(msg); m != nil {
				if n, _ := strconv.Atoi(m[1]); reported[n] {
					continue
				}
			}
			if len(errs) >= MaxErrors {
				more++
				continue
			}
			errs = append(errs, d.lineError(msg))
		}
	}
	if more > 0 {
		errs = append(errs, d.moreErrors(more))
	}
	return d, errors.Join(errs...)
}

// Decode decodes a block its owner kept as a yaml.Node (a field of type
// yaml.Node, which Parse leaves alone) into v, with the checks Parse runs
// on the rest: unknown keys and values of the wrong shape, each an *Error
// at its place in the file with its key path below path
// ("rules[2].writeback.set.cf_1: unknown key"). A zero node (the key was
// absent) leaves v as it is.
func (d *Doc) Decode(n *yaml.Node, path string, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	var errs []error
	reported := map[int]bool{}
	s := shapeCheck{types: true, expanded: d.expanded, report: func(at *yaml.Node, path, msg string) {
		reported[at.Line] = true
		errs = append(errs, &Error{File: d.File, Pos: Pos{at.Line, at.Column}, Path: path, Err: errors.New(msg)})
	}}
	s.check(n, reflect.TypeOf(v), path)
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
		if errors.As(err, &te) {
			msgs = te.Errors
		}
		for _, msg := range msgs {
			if m := lineRef.FindStringSubmatch(msg); m != nil {
				if n, _ := strconv.Atoi(m[1]); reported[n] {
					continue
				}
			}
			errs = append(errs, d.lineError(msg))
		}
	}
	return errors.Join(errs...)
}

// moreErrors is the last error of a list cut at MaxErrors.
func (d *Doc) moreErrors(n int) error {
	return &Error{File: d.File, Err: fmt.Errorf("and %d more errors (only the first %d are listed)", n, MaxErrors)}
}

// checkAliases refuses a document whose aliases add more than
// MaxAliasNodes nodes, naming the alias that crosses the bound, and one
// whose anchor contains an alias to itself. The expanded size of each
// anchor is computed once, so the count is linear in the file's size
// whatever the aliases would expand to.
func (d *Doc) checkAliases(root *yaml.Node) error {
	const busy = -1
	size := map[*yaml.Node]int{} // anchored node -> expanded node count, at most MaxAliasNodes+1
	var self *yaml.Node          // an alias met inside its own anchor's value
	var expanded func(n *yaml.Node) int
	expanded = func(n *yaml.Node) int {
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return 1
			}
			if s := size[n.Alias]; s == busy {
				if self == nil {
					self = n
				}
				return MaxAliasNodes + 1
			}
			return expanded(n.Alias)
		}
		if n.Anchor != "" {
			if s, ok := size[n]; ok && s != busy {
				return s
			}
			size[n] = busy
		}
		total := 1
		for _, c := range n.Content {
			total = min(total+expanded(c), MaxAliasNodes+1)
		}
		if n.Anchor != "" {
			size[n] = total
		}
		return total
	}
	added := 0
	var visit func(n *yaml.Node) error
	visit = func(n *yaml.Node) error {
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return nil
			}
			k := expanded(n)
			if self != nil {
				return &Error{File: d.File, Pos: Pos{self.Line, self.Column}, Err: fmt.Errorf("alias *%s is inside the value of its own anchor &%s", self.Value, self.Value)}
			}
			added = min(added+k, MaxAliasNodes+1)
			if added > MaxAliasNodes {
				return &Error{File: d.File, Pos: Pos{n.Line, n.Column}, Err: fmt.Errorf("aliases expand to more than %d nodes here (*%s adds %s), the limit for a config file", MaxAliasNodes, n.Value, atLeast(k))}
			}
			return nil
		}
		if n.Anchor != "" {
			// The anchor's own value: aliases inside it that point to it.
			expanded(n)
			if self != nil {
				return &Error{File: d.File, Pos: Pos{self.Line, self.Column}, Err: fmt.Errorf("alias *%s is inside the value of its own anchor &%s", self.Value, self.Value)}
			}
		}
		for _, c := range n.Content {
			if err := visit(c); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root)
}

// atLeast prints an expanded size, saturated at MaxAliasNodes+1.
func atLeast(n int) string {
	if n > MaxAliasNodes {
		return fmt.Sprintf("over %d nodes", MaxAliasNodes)
	}
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

var lineRef = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError places a YAML syntax error on the line that causes it.
// yaml.v3 reports the line where the enclosing block began (a dedented key
// on line 12 is reported where its list started, a tab on the line
// before), or no line at all, and never a column; so the line is found
// again here: the first line whose addition to the lines before it makes
// the parser fail with the same complaint, found by bisection in
// log2(lines) parses. A tab in that line's indentation is named as such.
func (d *Doc) syntaxError(src []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	problem := msg
	reported := 0
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		reported, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	starts := lineStarts(src)
	fails := func(k int) bool { // the first k lines give the same complaint
		end := len(src)
		if k < len(starts) {
			end = starts[k]
		}
		var n yaml.Node
		err := yaml.Unmarshal(src[:end], &n)
		if err == nil {
			return false
		}
		p := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRef.FindStringSubmatch(p); m != nil {
			p = m[2]
		}
		return p == problem
	}
	// fails(0) is false (nothing fails) and fails(len(starts)) is true (the
	// whole file): bisect to a line k where fails(k-1) is false and
	// fails(k) true, log2(lines) parses.
	lo, hi := 0, len(starts)
	if fails(hi) {
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if fails(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
	} else {
		hi = reported // cannot reproduce: keep the parser's line
	}
	if hi <= 0 || hi > len(starts) {
		return &Error{File: d.File, Pos: Pos{Line: reported, Col: 1}, Err: errors.New(problem)}
	}
	line := lineText(src, starts, hi)
	indent := len(line) - len(strings.TrimLeft(line, " \t"))
	if tab := strings.IndexByte(line[:indent], '\t'); tab >= 0 || (strings.Contains(problem, "tab") || strings.Contains(problem, "cannot start any token")) && strings.IndexByte(line, '\t') >= 0 {
		if tab < 0 {
			tab = strings.IndexByte(line, '\t')
		}
		col := utf8Col(line, tab)
		return &Error{File: d.File, Pos: Pos{hi, col}, Err: fmt.Errorf("tab character at %d:%d; YAML indents with spaces", hi, col)}
	}
	if hint, ok := syntaxHints[problem]; ok {
		problem += " (" + hint + ")"
	}
	if indent == len(line) {
		indent = 0
	}
	return &Error{File: d.File, Pos: Pos{hi, utf8Col(line, indent)}, Err: errors.New(problem)}
}

// syntaxHints explain yaml.v3's complaints about indentation.
var syntaxHints = map[string]string{
	"did not find expected key":                      "is this line indented like the keys above it?",
	"did not find expected '-' indicator":            "is this line indented like the list items or keys above it?",
	"mapping values are not allowed in this context": `is this line indented deeper than the keys above it, or does a value contain ": " and need quotes?`,
}

// lineStarts returns the byte offset of each line's start. YAML breaks
// lines at \n, \r\n and a lone \r.
func lineStarts(src []byte) []int {
	starts := []int{0}
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\r':
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			fallthrough
		case '\n':
			if i+1 < len(src) {
				starts = append(starts, i+1)
			}
		}
	}
	return starts
}

// lineText is the text of 1-based line n without its line break.
func lineText(src []byte, starts []int, n int) string {
	end := len(src)
	if n < len(starts) {
		end = starts[n]
	}
	return strings.TrimRight(string(src[starts[n-1]:end]), "\r\n")
}

// utf8Col is the 1-based column (in characters, as yaml.v3 counts) of byte
// offset i in line.
func utf8Col(line string, i int) int {
	return len([]rune(line[:i])) + 1
}

// looksTyped reports whether an expanded value should keep YAML's implicit
// typing (a number or boolean in ${PORT}), rather than be forced to string.
func looksTyped(s string) bool {
	if s == "true" || s == "false" {
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// fileRef opens a ${file:PATH} reference; PATH runs to the matching "}"
// and may itself contain ${VAR} (${file:${CREDENTIALS_DIRECTORY}/db}).
const fileRef = "${file:"

// expand replaces ${VAR}, ${VAR:-default}, ${file:PATH} and $$ in s.
// ${file:PATH} is the content of the file at PATH (expanded first), one
// trailing newline removed: Docker and Kubernetes secrets, systemd's
// LoadCredential=. An error names the file, never its content.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, fileRef) {
		return expandEnv(s, lookup)
	}
	var b strings.Builder
	seg := 0 // start of the text not yet expanded
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], "$$") {
			i++ // an escaped $: left to expandEnv
			continue
		}
		if !strings.HasPrefix(s[i:], fileRef) {
			continue
		}
		head, err := expandEnv(s[seg:i], lookup)
		if err != nil {
			return "", err
		}
		b.WriteString(head)
		rest := s[i+len(fileRef):]
		depth, end := 1, -1
		for j := 0; j < len(rest) && end < 0; j++ {
			switch rest[j] {
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					end = j
				}
			}
		}
		if end < 0 {
			return "", fmt.Errorf("%s without its closing }", fileRef)
		}
		path, err := expandEnv(rest[:end], lookup)
		if err != nil {
			return "", fmt.Errorf("in %s%s}: %w", fileRef, rest[:end], err)
		}
		if path == "" {
			return "", fmt.Errorf("%s} names no file", fileRef)
		}
		content, err := readSecret(path)
		if err != nil {
			return "", err
		}
		b.WriteString(content)
		i += len(fileRef) + end
		seg = i + 1
	}
	tail, err := expandEnv(s[seg:], lookup)
	if err != nil {
		return "", err
	}
	b.WriteString(tail)
	return b.String(), nil
}

// MaxSecretSize bounds a ${file:PATH} secret (64 kB): a key or a
// password, not a data file.
const MaxSecretSize = 64 << 10

// readSecret reads a secret file for ${file:PATH}. Its errors name the
// path and the reason, never any of the content.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return "", fmt.Errorf("secret file %s: is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("secret file %s: read: %w", path, errors.Unwrap(err))
	}
	if len(data) > MaxSecretSize {
		return "", fmt.Errorf("secret file %s: larger than %d kB, the limit for a secret", path, MaxSecretSize>>10)
	}
	v := strings.TrimSuffix(string(data), "\n")
	v = strings.TrimSuffix(v, "\r")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return v, nil
}

func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := envRef.FindStringSubmatch(m)
		if v, ok := lookup(sub[1]); ok && v != "" {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing = append(missing, sub[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", strings.Join(missing, ", "), missing[0])
	}
	return out, nil
}

// walk calls fn on every node with its key path, aliases followed (their
// expansion is bounded by checkAliases), and records each path's node.
func (d *Doc) walk(n *yaml.Node, path string, fn func(*yaml.Node, string)) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.places[path]; !ok {
		d.places[path] = place{line: int32(n.Line), col: int32(n.Column)}
	}
	if c, ok := d.nodeCol[n.Line]; !ok || n.Column < c {
		d.nodeCol[n.Line] = n.Column
	}
	fn(n, path)
	if n.Kind == yaml.ScalarNode && !strings.Contains(n.Value, "\n") {
		p := d.places[path]
		p.oneLine = true
		p.quoted = n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle
		d.places[path] = p
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := n.Content[i]
			if c, ok := d.keyCol[kn.Line]; !ok || kn.Column < c {
				d.keyCol[kn.Line] = kn.Column
			}
			d.walk(n.Content[i+1], joinKey(path, kn.Value), fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.walk(c, path+"["+strconv.Itoa(i)+"]", fn)
		}
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Pos returns the position of the value at path ("rules[2].when"), or of its
// nearest ancestor that exists; the zero Pos when nothing matches.
func (d *Doc) Pos(path string) Pos {
	if d == nil {
		return Pos{}
	}
	for p := path; ; {
		if pl, ok := d.places[p]; ok {
			return Pos{int(pl.line), int(pl.col)}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			if pl, ok := d.places[""]; ok {
				return Pos{int(pl.line), int(pl.col)}
			}
			return Pos{}
		}
		p = p[:i]
	}
}

func (d *Doc) place(path string) (place, bool) {
	if d == nil {
		return place{}, false
	}
	pl, ok := d.places[path]
	return pl, ok
}

// Errorf returns an *Error at path.
func (d *Doc) Errorf(path, format string, args ...any) error {
	return d.Wrap(path, fmt.Errorf(format, args...))
}

// Wrap places err at path. Errors that are already *Error pass unchanged.
func (d *Doc) Wrap(path string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	file := ""
	if d != nil {
		file = d.File
	}
	return &Error{File: file, Pos: d.Pos(path), Path: path, Err: err}
}

// PathError is an error a package's Validate returns for one key path; the
// loader turns it into a positioned *Error with Doc.Locate.
type PathError struct {
	Path string
	// Offset is a 0-based column offset into the value at Path (for example
	// where an expr program failed), applied when the value is on one line.
	Offset int
	Err    error
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// Errf returns a *PathError.
func Errf(path, format string, args ...any) error {
	return &PathError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Locate turns every *PathError inside err (a single error or an
// errors.Join tree) into a positioned *Error, sorted by position. Each
// error costs a map lookup, so thousands of errors are placed in
// proportion to their number.
func (d *Doc) Locate(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var visit func(error)
	visit = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				visit(c)
			}
			return
		}
		var pe *PathError
		if errors.As(e, &pe) {
			pos := d.Pos(pe.Path)
			if pl, ok := d.place(pe.Path); ok && pe.Offset > 0 && pl.oneLine {
				pos.Col += pe.Offset
				if pl.quoted {
					pos.Col++
				}
			}
			file := ""
			if d != nil {
				file = d.File
			}
			out = append(out, &Error{File: file, Pos: pos, Path: pe.Path, Err: pe.Err})
			return
		}
		out = append(out, e)
	}
	visit(err)
	sort.SliceStable(out, func(i, j int) bool {
		a, aok := out[i].(*Error)
		b, bok := out[j].(*Error)
		if !aok || !bok {
			return aok && !bok
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Pos.Col < b.Pos.Col
	})
	return errors.Join(out...)
}

// lineError turns a yaml.v3 "line N: msg" into "file:N:col: msg".
func (d *Doc) lineError(msg string) error {
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: d.File, Pos: Pos{Line: n, Col: d.colOfLine(n)}, Err: errors.New(m[2])}
	}
	return &Error{File: d.File, Err: errors.New(msg)}
}

func (d *Doc) colOfLine(line int) int {
	if c, ok := d.keyCol[line]; ok {
		return c
	}
	if c, ok := d.nodeCol[line]; ok {
		return c
	}
	return 1
}

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// UnknownKeys returns a *PathError for each mapping key in n, at any depth,
// that the Go type t has no field for: "webhooks.erp.methd: unknown key
// (did you mean method?)". It is for blocks a package decodes itself from
// a yaml.Node; Parse checks the whole document the same way.
func UnknownKeys(n *yaml.Node, t reflect.Type, path string) []error {
	var errs []error
	s := shapeCheck{report: func(_ *yaml.Node, path, msg string) {
		errs = append(errs, &PathError{Path: path, Err: errors.New(msg)})
	}}
	s.check(n, t, path)
	return errs
}

// shapeCheck walks a node tree beside the Go type it decodes into and
// reports, by key path, each mapping key the type has no field for, with
// a hint naming the nearest known key, and (with types) each value that
// cannot decode: a list where a mapping belongs, "soon" for a duration.
// Values decoded by their own UnmarshalYAML or kept as a yaml.Node are
// their owner's business.
type shapeCheck struct {
	types bool
	// expanded holds the text as written of scalars that came from ${VAR}:
	// their values may be secrets and are not shown.
	expanded map[*yaml.Node]string
	report   func(at *yaml.Node, path, msg string)
}

func (s *shapeCheck) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leaves the default
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if s.types && !reflect.PointerTo(t).Implements(textUnmarshalerType) {
				s.report(n, path, "want a mapping of keys, got "+s.got(n))
			} else if s.types {
				s.scalar(n, t, path)
			}
			return
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				// A merge key: the merged mappings' keys are this mapping's.
				if v.Kind == yaml.AliasNode && v.Alias != nil {
					v = v.Alias
				}
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						s.check(m, t, path)
					}
				} else {
					s.check(v, t, path)
				}
				continue
			}
			ft, ok := fields.byKey[k.Value]
			if !ok {
				if !fields.anyKey {
					s.report(k, joinKey(path, k.Value), "unknown key"+Suggest(k.Value, fields.keys))
				}
				continue
			}
			s.check(v, ft, joinKey(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if s.types {
				s.report(n, path, "want a mapping, got "+s.got(n))
			}
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.check(n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			if s.types {
				s.report(n, path, "want a list, got "+s.got(n))
			}
			return
		}
		for i, c := range n.Content {
			s.check(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Interface:
	default:
		if s.types {
			s.scalar(n, t, path)
		}
	}
}

// scalar reports a value that does not decode into the scalar type t.
func (s *shapeCheck) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		s.report(n, path, "want "+describe(t)+", got "+s.got(n))
		return
	}
	if t.Kind() == reflect.String && !reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return // any scalar is a string
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		msg := "want " + describe(t) + ", got " + s.got(n)
		if _, secret := s.expanded[n]; t == durationType && !secret && looksTyped(n.Value) {
			msg += " (a number needs a unit: " + n.Value + "s)"
		}
		s.report(n, path, msg)
	}
}

// got describes a value for an error message.
func (s *shapeCheck) got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if src, ok := s.expanded[n]; ok {
		return strconv.Quote(src) + " (its value is not shown)"
	}
	return strconv.Quote(n.Value)
}

// describe names what a Go type takes, in YAML terms.
func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s, 5m or 1h30m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return "a whole number, 0 or more"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "a mapping"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "a list"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a single value"
}

// keySet is the keys a struct type accepts, as yaml.v3 decodes it.
type keySet struct {
	byKey map[string]reflect.Type
	keys  []string // in field order, for hints
	// anyKey is set by an inline map, which takes every other key.
	anyKey bool
}

func structFields(t reflect.Type) keySet {
	s := keySet{byKey: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.PkgPath != "" && !f.Anonymous {
				continue // unexported
			}
			tag := f.Tag.Get("yaml")
			if tag == "" && !strings.Contains(string(f.Tag), ":") {
				tag = string(f.Tag)
			}
			if tag == "-" {
				continue
			}
			name, flags, _ := strings.Cut(tag, ",")
			if slices.Contains(strings.Split(flags, ","), "inline") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Struct:
					add(ft)
				case reflect.Map:
					s.anyKey = true
				}
				continue
			}
			if f.PkgPath != "" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := s.byKey[name]; !dup {
				s.keys = append(s.keys, name)
			}
			s.byKey[name] = f.Type
		}
	}
	add(t)
	return s
}

// Suggest returns " (did you mean X?)" for the candidate nearest to name, or
// " (known: a, b, c)" listing them all when none is near; "" when there
// are no candidates. Near is within a third of the name's length in edits
// (at least one; a swap of neighbours is one), case ignored.
func Suggest(name string, candidates []string) string {
	if len(candidates) == 0 {
		return ""
	}
	best, bestD := "", max(1, len(name)/3)+1
	ln := strings.ToLower(name)
	for _, c := range candidates {
		if d := editDistance(ln, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return " (did you mean " + best + "?)"
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	return " (known: " + strings.Join(sorted, ", ") + ")"
}

// editDistance is the optimal string alignment distance between a and b,
// in runes: insertions, deletions, substitutions and swaps of neighbours
// ("tabel" for "table") count one each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
