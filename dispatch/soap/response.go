package soap

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Fault is a SOAP Fault returned by the service (1.1 faultcode/faultstring
// or 1.2 Code/Reason). It is an error: a failed attempt.
type Fault struct {
	// Version is the envelope's SOAP version (the fault inside may be
	// written in the other version's dialect).
	Version string
	// Code is the fault code's local name: Client, Server, VersionMismatch,
	// MustUnderstand (1.1, with dotted refinements such as
	// "Client.Authentication") or Sender, Receiver, … (1.2).
	Code string
	// Subcodes are the SOAP 1.2 subcode values, outermost first, as
	// written ("m:InvalidNumber").
	Subcodes []string
	// String is faultstring (1.1) or the Reason text (1.2).
	String string
	// Actor is faultactor (1.1) or Node (1.2).
	Actor string
	// Detail is the detail element's content as XML (at most 4 KiB).
	Detail string
	// Status is the HTTP status of the response (0 when unknown).
	Status int
}

// maxDetail bounds Fault.Detail.
const maxDetail = 4 << 10

// Error renders the fault for the delivery log: code, subcodes, string
// and a short detail text.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("soap fault ")
	b.WriteString(f.Code)
	for _, s := range f.Subcodes {
		b.WriteString("/" + s)
	}
	b.WriteString(": ")
	b.WriteString(f.String)
	if d := detailText(f.Detail); d != "" {
		b.WriteString(" (detail: " + d + ")")
	}
	return b.String()
}

// Permanent reports whether sending the same request again cannot help:
// client (Sender) faults, version mismatches and unknown mandatory
// headers are permanent; server (Receiver) faults and unknown codes are
// retried.
func (f *Fault) Permanent() bool {
	base, _, _ := strings.Cut(f.Code, ".")
	switch base {
	case "Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown":
		return true
	}
	return false
}

// detailText is the detail's text content, whitespace-collapsed and cut.
func detailText(detail string) string {
	if detail == "" {
		return ""
	}
	doc := etree.NewDocument()
	var text string
	if err := doc.ReadFromString("<d>" + detail + "</d>"); err == nil && doc.Root() != nil {
		var parts []string
		collectText(doc.Root(), &parts, 0)
		text = strings.Join(parts, " ")
	} else {
		text = detail
	}
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > 200 {
		text = string(r[:200]) + "…"
	}
	return text
}

func collectText(e *etree.Element, out *[]string, depth int) {
	if depth > maxTreeDepth {
		return
	}
	for _, t := range e.Child {
		switch x := t.(type) {
		case *etree.CharData:
			if s := strings.TrimSpace(x.Data); s != "" {
				*out = append(*out, s)
			}
		case *etree.Element:
			collectText(x, out, depth+1)
		}
	}
}

// maxTreeDepth bounds response nesting.
const maxTreeDepth = 256

// ParseResponse parses a SOAP response body without a WSDL. It returns the
// result tree (see Operation.ParseResponse for its shape), a *Fault when
// the Body holds a Fault, or an error wrapping ErrNotSOAP.
func ParseResponse(body []byte) (map[string]any, error) {
	return parseResponse(body, nil, 0)
}

// ParseResponse parses a response to op, typing values by the output
// message's schema: integers become int64 (uint64 when larger), booleans
// bool, float and double float64, decimals and everything else strings,
// xsi:nil elements nil; elements declared with maxOccurs > 1 are always
// lists.
//
// The tree holds the response wrapper's children ("AddResult" of
// <AddResponse><AddResult>5</AddResult></AddResponse>), so writeback
// expressions read response.soap.AddResult. When the Body holds several
// elements, or one element with text only (bare document style), the tree
// maps those elements' names instead. Nested elements are maps, repeated
// elements lists; names are local names without prefixes; attributes are
// not included. SOAP-encoded href/id references are followed and
// soapenc:Array values are lists.
func (op *Operation) ParseResponse(body []byte) (map[string]any, error) {
	var l *layout
	if op.outErr == nil {
		l = op.outLayout
	}
	return parseResponse(body, l, 0)
}

func parseResponse(body []byte, l *layout, status int) (map[string]any, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = charsetReader
	if err := doc.ReadFromBytes(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSOAP, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Envelope" {
		what := "no element"
		if root != nil {
			what = "<" + root.FullTag() + ">"
		}
		return nil, fmt.Errorf("%w: root is %s, not Envelope", ErrNotSOAP, what)
	}
	version := ""
	switch space(root) {
	case NSSOAP11:
		version = V11
	case NSSOAP12:
		version = V12
	default:
		return nil, fmt.Errorf("%w: Envelope namespace %q is neither SOAP 1.1 nor 1.2", ErrNotSOAP, space(root))
	}
	var bodyEl *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == "Body" && space(c) == space(root) {
			bodyEl = c
		}
	}
	if bodyEl == nil {
		return nil, fmt.Errorf("%w: Envelope has no Body", ErrNotSOAP)
	}
	kids := bodyEl.ChildElements()
	for _, k := range kids {
		if isFault(k) {
			f := parseFault(k, version)
			f.Status = status
			return nil, f
		}
	}
	p := &parser{ids: map[string]*etree.Element{}}
	for _, k := range kids {
		if id := attr(k, "id"); id != "" {
			p.ids[id] = k
		}
	}
	// The elements that carry the result: a multiRef-style Body has the
	// wrapper first and referenced values after it.
	var top []*etree.Element
	for _, k := range kids {
		if attr(k, "id") != "" && len(kids) > 1 && k != kids[0] {
			continue
		}
		top = append(top, k)
	}
	var params []*Param
	wrapped := false
	if l != nil {
		params = l.params
		wrapped = l.wrapper != nil
	}
	var tree map[string]any
	if len(top) == 1 && (wrapped || (l == nil && !hasText(top[0]))) {
		tree = p.fields(p.deref(top[0], 0), params, 0)
	} else {
		tree = p.collect(top, params, 0)
	}
	if p.values > maxValues {
		return nil, errTooComplex
	}
	return tree, nil
}

type parser struct {
	ids map[string]*etree.Element
	// values counts converted elements: shared multiRef values are copied
	// at each reference, so a malicious body could otherwise expand
	// exponentially.
	values int
}

// maxValues bounds the elements one response converts to.
const maxValues = 100000

var errTooComplex = fmt.Errorf("%w: the response expands to more than %d values (SOAP-encoded references nested too deeply)", ErrNotSOAP, maxValues)

func hasText(e *etree.Element) bool {
	for _, t := range e.Child {
		if c, ok := t.(*etree.CharData); ok && strings.TrimSpace(c.Data) != "" {
			return true
		}
	}
	return false
}

// deref follows a SOAP-encoded href="#id".
func (p *parser) deref(e *etree.Element, depth int) *etree.Element {
	for i := 0; i < 16; i++ {
		h := attr(e, "href")
		if !strings.HasPrefix(h, "#") {
			return e
		}
		t, ok := p.ids[h[1:]]
		if !ok {
			return e
		}
		e = t
	}
	return e
}

// collect maps elements by local name; repeated names become lists, and
// names the schema declares repeatable are always lists.
func (p *parser) collect(els []*etree.Element, params []*Param, depth int) map[string]any {
	out := map[string]any{}
	lists := map[string]bool{}
	for _, c := range els {
		var cp *Param
		if params != nil {
			cp = findParam(params, c.Tag)
		}
		v := p.value(c, cp, depth+1)
		old, seen := out[c.Tag]
		switch {
		case lists[c.Tag]:
			out[c.Tag] = append(old.([]any), v)
		case seen:
			out[c.Tag] = []any{old, v}
			lists[c.Tag] = true
		case cp != nil && cp.IsArray():
			out[c.Tag] = []any{v}
			lists[c.Tag] = true
		default:
			out[c.Tag] = v
		}
	}
	return out
}

// fields returns the children of e as a map.
func (p *parser) fields(e *etree.Element, params []*Param, depth int) map[string]any {
	if depth > maxTreeDepth {
		return map[string]any{}
	}
	return p.collect(e.ChildElements(), params, depth)
}

// value converts one element.
func (p *parser) value(e *etree.Element, param *Param, depth int) any {
	p.values++
	if p.values > maxValues {
		return nil
	}
	e = p.deref(e, depth)
	if nilAttr, ok := attrNS(e, NSXSI, "nil"); ok && (nilAttr == "true" || nilAttr == "1") {
		return nil
	}
	if depth > maxTreeDepth {
		return nil
	}
	kids := e.ChildElements()
	_, soapArray := attrNS(e, NSSOAPEnc11, "arrayType")
	if (param != nil && param.EncodedArray) || soapArray {
		var item *Param
		if param != nil && len(param.Children) == 1 {
			item = param.Children[0]
		}
		list := make([]any, 0, len(kids))
		for _, k := range kids {
			list = append(list, p.value(k, item, depth+1))
		}
		return list
	}
	if len(kids) > 0 {
		var cs []*Param
		if param != nil {
			cs = param.Children
		}
		return p.collect(kids, cs, depth)
	}
	text := e.Text()
	if param == nil {
		return text
	}
	if param.Complex {
		return map[string]any{}
	}
	return typed(param.Base, text)
}

// typed converts the text of a simple value of the built-in type base.
func typed(base, text string) any {
	s := strings.TrimSpace(text)
	if _, ok := intRanges[base]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64); err == nil {
			return n
		}
		return text
	}
	switch base {
	case "xsd:boolean":
		switch s {
		case "true", "1":
			return true
		case "false", "0":
			return false
		}
	case "xsd:float", "xsd:double":
		switch s {
		case "INF":
			return math.Inf(1)
		case "-INF":
			return math.Inf(-1)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return text
}

func localText(e *etree.Element, name string) (string, bool) {
	for _, c := range e.ChildElements() {
		if c.Tag == name {
			return strings.TrimSpace(c.Text()), true
		}
	}
	return "", false
}

func childLocal(e *etree.Element, name string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == name {
			return c
		}
	}
	return nil
}

// isFault reports whether e is a SOAP Fault: in either version's envelope
// namespace (servers put a 1.2 Fault into a 1.1 envelope and the reverse)
// or unqualified.
func isFault(e *etree.Element) bool {
	if e.Tag != "Fault" {
		return false
	}
	switch space(e) {
	case NSSOAP11, NSSOAP12, "":
		return true
	}
	return false
}

// parseFault reads a Fault element of a version-envelope. The dialect is
// taken from the children, not the envelope: node-soap answers every
// handler exception with a 1.2-style Code/Reason fault inside a 1.1
// envelope, and other stacks send faultcode/faultstring inside 1.2 ones.
func parseFault(e *etree.Element, version string) *Fault {
	f := &Fault{Version: version}
	codeName := func(el *etree.Element, v string) string {
		q, ok := resolveQName(el, v, "")
		if ok && q.Local != "" {
			return q.Local
		}
		if _, local, found := strings.Cut(v, ":"); found {
			return local
		}
		return v
	}
	has11 := childLocal(e, "faultcode") != nil || childLocal(e, "faultstring") != nil
	has12 := childLocal(e, "Code") != nil || childLocal(e, "Reason") != nil
	dialect := version
	switch {
	case has11 && !has12:
		dialect = V11
	case has12 && !has11:
		dialect = V12
	}
	if dialect == V11 {
		if c := childLocal(e, "faultcode"); c != nil {
			f.Code = codeName(c, strings.TrimSpace(c.Text()))
		}
		f.String, _ = localText(e, "faultstring")
		f.Actor, _ = localText(e, "faultactor")
		f.Detail = innerXML(childLocal(e, "detail"))
	} else {
		if code := childLocal(e, "Code"); code != nil {
			if v := childLocal(code, "Value"); v != nil {
				f.Code = codeName(v, strings.TrimSpace(v.Text()))
			}
			sub := childLocal(code, "Subcode")
			for i := 0; sub != nil && i < 16; i++ {
				if v := childLocal(sub, "Value"); v != nil {
					f.Subcodes = append(f.Subcodes, strings.TrimSpace(v.Text()))
				}
				sub = childLocal(sub, "Subcode")
			}
		}
		if r := childLocal(e, "Reason"); r != nil {
			f.String = reasonText(r)
		}
		f.Actor, _ = localText(e, "Node")
		f.Detail = innerXML(childLocal(e, "Detail"))
	}
	if f.Code == "" {
		f.Code = "Server"
		if dialect == V12 {
			f.Code = "Receiver"
		}
	}
	return f
}

// reasonText picks the English Text of a 1.2 Reason, else the first.
func reasonText(r *etree.Element) string {
	text, found := "", false
	for _, t := range r.ChildElements() {
		if t.Tag != "Text" {
			continue
		}
		lang, _ := attrNS(t, "http://www.w3.org/XML/1998/namespace", "lang")
		if strings.HasPrefix(strings.ToLower(lang), "en") {
			return strings.TrimSpace(t.Text())
		}
		if !found {
			text, found = strings.TrimSpace(t.Text()), true
		}
	}
	return text
}

// innerXML serializes e's content, cut at maxDetail bytes.
func innerXML(e *etree.Element) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	ws := etree.WriteSettings{}
	for _, t := range e.Child {
		t.WriteTo(&b, &ws)
		if b.Len() > maxDetail {
			break
		}
	}
	s := strings.TrimSpace(b.String())
	if len(s) > maxDetail {
		s = s[:maxDetail]
	}
	return s
}
