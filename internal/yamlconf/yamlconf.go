// Package yamlconf loads rowhook's YAML configuration with positions: every
// error names the file, line and column and the key path
// ("rowhook.yaml:14:11: rules[2].when: unknown name \"amout\"").
//
// ${VAR} and ${VAR:-default} are expanded inside scalar values after parsing,
// so a secret containing YAML syntax (": ", "#") cannot change the document's
// structure, and positions stay those of the file as written.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Doc is a parsed configuration document and the positions of its values.
type Doc struct {
	// File is the name used in error messages.
	File string
	// Root is the document node after environment expansion.
	Root *yaml.Node
	pos  map[string]Pos
	// keyCol is the smallest column of a mapping key on each line, for
	// errors yaml.v3 reports by line only (unknown keys).
	keyCol map[int]int
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
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, bytes.NewReader(b), v)
}

// Parse parses YAML from r into v. name is used in error messages. Unknown
// keys are errors. Environment variables are looked up with os.LookupEnv.
func Parse(name string, r io.Reader, v any) (*Doc, error) {
	return ParseEnv(name, r, v, os.LookupEnv)
}

// ParseEnv is Parse with an explicit environment lookup.
func ParseEnv(name string, r io.Reader, v any, lookup func(string) (string, bool)) (*Doc, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	d := &Doc{File: name, pos: map[string]Pos{}, keyCol: map[int]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, d.yamlError(err)
	}
	if len(root.Content) == 0 {
		return d, nil
	}
	d.Root = &root
	var errs []error
	d.walk(root.Content[0], "", func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "${") {
			return
		}
		val, err := expand(n.Value, lookup)
		if err != nil {
			errs = append(errs, d.Errorf(path, "%v", err))
			return
		}
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
	if len(errs) > 0 {
		return d, errors.Join(errs...)
	}
	// Unknown keys: decode the original text strictly and keep only the
	// unknown-field complaints (type errors are reported by the real decode
	// below, after expansion).
	strict := yaml.NewDecoder(bytes.NewReader(src))
	strict.KnownFields(true)
	scratch := newLike(v)
	if err := strict.Decode(scratch); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				if strings.Contains(msg, "not found in type") {
					errs = append(errs, d.lineError(msg))
				}
			}
		}
	}
	if err := root.Content[0].Decode(v); err != nil {
		errs = append(errs, d.yamlError(err))
	}
	return d, errors.Join(errs...)
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

func expand(s string, lookup func(string) (string, bool)) (string, error) {
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

func (d *Doc) walk(n *yaml.Node, path string, fn func(*yaml.Node, string)) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	fn(n, path)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			kn := n.Content[i]
			if c, ok := d.keyCol[kn.Line]; !ok || kn.Column < c {
				d.keyCol[kn.Line] = kn.Column
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			d.walk(n.Content[i+1], p, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.walk(c, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// Pos returns the position of the value at path ("rules[2].when"), or of its
// nearest ancestor that exists; the zero Pos when nothing matches.
func (d *Doc) Pos(path string) Pos {
	if d == nil {
		return Pos{}
	}
	for p := path; ; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			if pos, ok := d.pos[""]; ok {
				return pos
			}
			return Pos{}
		}
		p = p[:i]
	}
}

// Node returns the node at path, or nil.
func (d *Doc) Node(path string) *yaml.Node {
	if d == nil || d.Root == nil || len(d.Root.Content) == 0 {
		return nil
	}
	var found *yaml.Node
	d.walk(d.Root.Content[0], "", func(n *yaml.Node, p string) {
		if found == nil && p == path {
			found = n
		}
	})
	return found
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
// errors.Join tree) into a positioned *Error, sorted by position.
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
			if n := d.Node(pe.Path); n != nil && pe.Offset > 0 && n.Kind == yaml.ScalarNode && !strings.Contains(n.Value, "\n") {
				pos.Col += pe.Offset
				if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
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

var lineRef = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// lineError turns a yaml.v3 "line N: msg" into "file:N: msg".
func (d *Doc) lineError(msg string) error {
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		text := m[2]
		if f := regexp.MustCompile(`^field (\S+) not found in type (\S+)$`).FindStringSubmatch(text); f != nil {
			text = fmt.Sprintf("unknown key %q (in %s)", f[1], f[2])
		}
		return &Error{File: d.File, Pos: Pos{Line: n, Col: d.colOfLine(n)}, Err: errors.New(text)}
	}
	return &Error{File: d.File, Err: errors.New(msg)}
}

func (d *Doc) colOfLine(line int) int {
	if c, ok := d.keyCol[line]; ok {
		return c
	}
	best := 0
	for _, p := range d.pos {
		if p.Line == line && (best == 0 || p.Col < best) {
			best = p.Col
		}
	}
	if best == 0 {
		return 1
	}
	return best
}

func (d *Doc) yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, msg := range te.Errors {
			errs = append(errs, d.lineError(msg))
		}
		return errors.Join(errs...)
	}
	return d.lineError(strings.TrimPrefix(err.Error(), "yaml: "))
}

// newLike returns a new zero value of the type v points to.
func newLike(v any) any {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return new(any)
	}
	return reflect.New(t.Elem()).Interface()
}
