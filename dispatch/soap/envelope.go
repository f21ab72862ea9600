package soap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/rowhook/rowhook/cdc"
)

// Request is a SOAP request ready to send.
type Request struct {
	// Version is V11 or V12.
	Version string
	// Action is the SOAP action.
	Action string
	// ContentType is the Content-Type header.
	ContentType string
	// Headers are the other headers the request needs (SOAPAction in 1.1).
	Headers map[string]string
	// Body is the envelope.
	Body []byte
}

// TextKey is the key of an element's own text in a map value, for
// elements that have attributes and simple content
// ({"_value": "12.50", "currency": "EUR"}).
const TextKey = "_value"

// BuildRequest builds the request envelope of op from values: a tree of
// parameter names to values (nested maps for complex types, lists for
// arrays; see SetPath). Values are converted to the lexical form of their
// XSD type and escaped; namespaces follow the schema (qualified or not).
func (op *Operation) BuildRequest(values map[string]any) (*Request, error) {
	if op.inErr != nil {
		return nil, op.inErr
	}
	w := newEnvWriter(op.Use == "encoded")
	envNS := NSSOAP11
	if op.Version == V12 {
		envNS = NSSOAP12
	}
	var body bytes.Buffer
	w.out = &body
	l := op.inLayout
	if l.wrapper != nil {
		name := w.qualify(l.wrapper.Space, l.wrapper.Local)
		body.WriteString("<" + name)
		if w.encoded {
			body.WriteString(` soap:encodingStyle="` + escAttr(op.EncodingStyle) + `"`)
		}
		body.WriteString(">")
		if err := w.children(l.params, values, ""); err != nil {
			return nil, err
		}
		body.WriteString("</" + name + ">")
	} else if err := w.children(l.params, values, ""); err != nil {
		return nil, err
	}
	var env bytes.Buffer
	env.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	env.WriteString(`<soap:Envelope xmlns:soap="` + envNS + `"`)
	for _, ns := range w.order {
		env.WriteString(` xmlns:` + w.prefixes[ns] + `="` + escAttr(ns) + `"`)
	}
	env.WriteString(`><soap:Body>`)
	env.Write(body.Bytes())
	env.WriteString(`</soap:Body></soap:Envelope>`)
	req := &Request{Version: op.Version, Action: op.Action, Body: env.Bytes(), Headers: map[string]string{}}
	if op.Version == V12 {
		req.ContentType = "application/soap+xml; charset=utf-8"
		if op.Action != "" {
			req.ContentType += `; action="` + op.Action + `"`
		}
	} else {
		req.ContentType = "text/xml; charset=utf-8"
		req.Headers["SOAPAction"] = strconv.Quote(op.Action)
	}
	return req, nil
}

type envWriter struct {
	out      *bytes.Buffer
	prefixes map[string]string
	order    []string
	encoded  bool
	n        int
}

func newEnvWriter(encoded bool) *envWriter {
	return &envWriter{prefixes: map[string]string{}, encoded: encoded}
}

// qualify returns the prefixed name of {ns}local, declaring a prefix for
// ns on first use; unqualified names have no prefix (no default namespace
// is ever declared, so they are in no namespace).
func (w *envWriter) qualify(ns, local string) string {
	if ns == "" {
		return local
	}
	p, ok := w.prefixes[ns]
	if !ok {
		switch ns {
		case NSXSI:
			p = "xsi"
		case NSXSD:
			p = "xsd"
		case NSSOAPEnc11, NSSOAPEnc12:
			p = "soapenc"
		default:
			w.n++
			p = "ns" + strconv.Itoa(w.n)
		}
		w.prefixes[ns] = p
		w.order = append(w.order, ns)
	}
	return p + ":" + local
}

func escText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func escAttr(s string) string { return escText(s) }

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// children writes the element children of a complex value (or the top
// level) in schema order.
func (w *envWriter) children(params []*Param, values map[string]any, path string) error {
	for k := range values {
		if k == TextKey {
			continue
		}
		if findParam(params, k) == nil {
			return fmt.Errorf("%w %s (%s)", ErrUnknownParam, join(path, k), expected(params, path))
		}
	}
	for _, p := range params {
		if p.Attribute {
			continue
		}
		v, ok := values[p.Name]
		if !ok {
			if p.MinOccurs > 0 && !p.Choice && !p.Any {
				return fmt.Errorf("parameter %s is required (minOccurs %d) but not mapped", join(path, p.Name), p.MinOccurs)
			}
			continue
		}
		if err := w.param(p, v, join(path, p.Name)); err != nil {
			return err
		}
	}
	return nil
}

func expected(params []*Param, path string) string {
	var names []string
	for _, p := range params {
		if !p.Any {
			names = append(names, p.Name)
		}
	}
	where := "the operation"
	if path != "" {
		where = path
	}
	if len(names) == 0 {
		return where + " has no parameters"
	}
	return where + " has " + strings.Join(names, ", ")
}

// asList returns v's items when v is a list (not a byte string).
func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []byte, cdc.Bytes, nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// asMap returns v as a map with string keys.
func asMap(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	for _, k := range rv.MapKeys() {
		out[k.String()] = rv.MapIndex(k).Interface()
	}
	return out, true
}

func (w *envWriter) param(p *Param, v any, path string) error {
	if p.Any {
		return fmt.Errorf("parameter %s is an xsd:any wildcard, which rowhook cannot map", path)
	}
	items, isList := asList(v)
	if !p.IsArray() || p.EncodedArray {
		if p.EncodedArray {
			return w.one(p, v, path)
		}
		if isList {
			return fmt.Errorf("parameter %s: got a list of %d, but it occurs at most once", path, len(items))
		}
		return w.one(p, v, path)
	}
	if !isList {
		items = []any{v}
	}
	if p.MaxOccurs >= 0 && len(items) > p.MaxOccurs {
		return fmt.Errorf("parameter %s: got %d items, more than maxOccurs %d", path, len(items), p.MaxOccurs)
	}
	if len(items) < p.MinOccurs {
		return fmt.Errorf("parameter %s: got %d items, fewer than minOccurs %d", path, len(items), p.MinOccurs)
	}
	for i, it := range items {
		if err := w.one(p, it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func stringish(base string) bool {
	switch base {
	case "", "xsd:string", "xsd:normalizedString", "xsd:token", "xsd:anyType", "xsd:anySimpleType", "xsd:anyURI":
		return true
	}
	return false
}

// one writes a single occurrence of p.
func (w *envWriter) one(p *Param, v any, path string) error {
	name := w.qualify(p.Namespace, p.Name)
	if v == nil {
		switch {
		case p.Nillable:
			w.out.WriteString("<" + name + " " + w.qualify(NSXSI, "nil") + `="true"/>`)
			return nil
		case p.MinOccurs == 0 && !strings.Contains(path, "["):
			return nil
		case !p.Complex && stringish(p.Base):
			w.out.WriteString("<" + name + "/>")
			return nil
		}
		return fmt.Errorf("parameter %s is required and not nillable, but the value is null", path)
	}
	m, isMap := asMap(v)
	hasAttrs := false
	for _, c := range p.Children {
		if c.Attribute {
			hasAttrs = true
		}
	}
	if _, isList := asList(v); p.EncodedArray && !isList {
		return fmt.Errorf("parameter %s is a SOAP-encoded array (%s): map it to a list", path, typeName(p))
	}
	if (p.Complex || (hasAttrs && isMap)) && !isMap && !p.EncodedArray {
		if p.Recursive && len(p.Children) == 0 {
			return fmt.Errorf("parameter %s: recursive type %s: map its fields on the enclosing occurrence", path, p.Type)
		}
		return fmt.Errorf("parameter %s is a complex type (%s): map it to an object with keys %s, or map its fields as %s.<field>", path, typeName(p), childNames(p), path)
	}
	w.out.WriteString("<" + name)
	if w.encoded && p.Type != "" {
		w.out.WriteString(" " + w.qualify(NSXSI, "type") + `="` + w.typeQName(p) + `"`)
	}
	if p.EncodedArray && len(p.Children) == 1 {
		if items, ok := asList(v); ok {
			w.out.WriteString(" " + w.qualify(NSSOAPEnc11, "arrayType") + `="` + w.typeQName(p.Children[0]) + "[" + strconv.Itoa(len(items)) + `]"`)
		}
	}
	if isMap {
		attrs := make([]*Param, 0)
		for _, c := range p.Children {
			if c.Attribute {
				attrs = append(attrs, c)
			}
		}
		for _, a := range attrs {
			av, ok := m[a.Name]
			if !ok || av == nil {
				if a.MinOccurs > 0 {
					return fmt.Errorf("attribute %s.%s is required but not mapped", path, a.Name)
				}
				continue
			}
			s, err := formatValue(a, av)
			if err != nil {
				return fmt.Errorf("attribute %s.%s (%s): %w", path, a.Name, typeName(a), err)
			}
			w.out.WriteString(" " + w.qualify(a.Namespace, a.Name) + `="` + escAttr(s) + `"`)
		}
	}
	if p.EncodedArray && len(p.Children) == 1 {
		items, ok := asList(v)
		if !ok {
			return fmt.Errorf("parameter %s is an array: map it to a list", path)
		}
		w.out.WriteString(">")
		for i, it := range items {
			if err := w.one(p.Children[0], it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		w.out.WriteString("</" + name + ">")
		return nil
	}
	if p.Complex {
		w.out.WriteString(">")
		if err := w.children(p.Children, m, path); err != nil {
			return err
		}
		w.out.WriteString("</" + name + ">")
		return nil
	}
	text := v
	if isMap {
		for k := range m {
			if k != TextKey && p.Child(k) == nil {
				return fmt.Errorf("%w %s (%s has attributes %s and its text as %s)", ErrUnknownParam, join(path, k), path, childNames(p), TextKey)
			}
		}
		text = m[TextKey]
	}
	s, err := formatValue(p, text)
	if err != nil {
		return fmt.Errorf("parameter %s (%s): %w", path, typeName(p), err)
	}
	w.out.WriteString(">" + escText(s) + "</" + name + ">")
	return nil
}

// typeQName renders p's type for xsi:type.
func (w *envWriter) typeQName(p *Param) string {
	if strings.HasPrefix(p.Type, "xsd:") && p.TypeNamespace == "" {
		return w.qualify(NSXSD, strings.TrimPrefix(p.Type, "xsd:"))
	}
	return w.qualify(p.TypeNamespace, p.Type)
}

func typeName(p *Param) string {
	switch {
	case p.Type != "" && p.Base != "" && p.Base != p.Type:
		return p.Type + " (" + p.Base + ")"
	case p.Type != "":
		return p.Type
	case p.Base != "":
		return p.Base
	case p.Complex:
		return "anonymous complex type"
	}
	return "xsd:anyType"
}

func childNames(p *Param) string {
	var names []string
	for _, c := range p.Children {
		if !c.Any {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// SetPath sets the parameter at a dotted path ("order.customer.name") in
// values, creating the maps on the way. Setting a path below a value that
// was set as text keeps that text under TextKey (element with attributes).
func SetPath(values map[string]any, path string, v any) error {
	parts := strings.Split(path, ".")
	m := values
	for i, part := range parts[:len(parts)-1] {
		next, ok := m[part]
		switch x := next.(type) {
		case map[string]any:
			m = x
			continue
		case nil:
			if ok {
				return fmt.Errorf("parameter %s is null, so %s cannot be set", strings.Join(parts[:i+1], "."), path)
			}
		default:
			if _, list := asList(next); list {
				return fmt.Errorf("parameter %s is a list, so %s cannot be set: map the list as a whole", strings.Join(parts[:i+1], "."), path)
			}
			nm := map[string]any{TextKey: next}
			m[part] = nm
			m = nm
			continue
		}
		nm := map[string]any{}
		m[part] = nm
		m = nm
	}
	last := parts[len(parts)-1]
	if old, ok := m[last].(map[string]any); ok {
		if _, isMap := asMap(v); !isMap {
			old[TextKey] = v
			return nil
		}
	}
	m[last] = v
	return nil
}

// ParamAt finds the parameter at a dotted path among params; the error
// wraps ErrUnknownParam and lists the names at the level that failed.
func ParamAt(params []*Param, path string) (*Param, error) {
	parts := strings.Split(path, ".")
	var p *Param
	level := params
	for i, name := range parts {
		p = findParam(level, name)
		if p == nil || p.Any {
			where := strings.Join(parts[:i], ".")
			return nil, fmt.Errorf("%w %q (%s)", ErrUnknownParam, path, expected(level, where))
		}
		if i < len(parts)-1 && p.IsArray() {
			return nil, fmt.Errorf("parameter %s is an array: map %s to a list of objects instead of mapping %s", strings.Join(parts[:i+1], "."), strings.Join(parts[:i+1], "."), path)
		}
		level = p.Children
	}
	return p, nil
}

// requiredUnmapped lists the required parameters (outside choices, under
// required or mapped parents) that no mapping covers.
func requiredUnmapped(params []*Param, mapped map[string]bool, path string) []string {
	var out []string
	for _, p := range params {
		full := join(path, p.Name)
		if p.Any || p.Choice || p.MinOccurs == 0 || p.Nillable {
			continue
		}
		if mapped[full] {
			continue
		}
		below := false
		for k := range mapped {
			if strings.HasPrefix(k, full+".") {
				below = true
			}
		}
		if below || (p.Complex && !p.IsArray()) {
			out = append(out, requiredUnmapped(nonAttr(p.Children, true), mapped, full)...)
			if !below && len(p.Children) == 0 {
				out = append(out, full)
			}
			continue
		}
		out = append(out, full)
	}
	sort.Strings(out)
	return out
}

func nonAttr(ps []*Param, keepAttrs bool) []*Param {
	if keepAttrs {
		return ps
	}
	var out []*Param
	for _, p := range ps {
		if !p.Attribute {
			out = append(out, p)
		}
	}
	return out
}
