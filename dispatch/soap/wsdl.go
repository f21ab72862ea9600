package soap

import (
	"fmt"
	"sort"
	"strings"

	"github.com/beevik/etree"
)

// Service is a loaded WSDL: its operations and the schemas of their
// messages. It is immutable and safe for concurrent use.
type Service struct {
	// Location is where the WSDL was loaded from.
	Location string
	// Name is the first wsdl:service's name.
	Name string
	// TargetNamespace is the main WSDL document's target namespace.
	TargetNamespace string
	// Documents lists every document loaded (WSDL, imported WSDLs, XSDs).
	Documents []string

	ops      []*Operation
	schemas  *schemaSet
	messages map[qname]*message
}

// Operation is one operation of a SOAP binding.
type Operation struct {
	// Name is the operation's name.
	Name string `json:"name"`
	// Action is the SOAP action (SOAPAction header in 1.1, the action
	// parameter of the content type in 1.2); may be empty.
	Action string `json:"soap_action"`
	// Style is document or rpc.
	Style string `json:"style"`
	// Use is literal or encoded.
	Use string `json:"use"`
	// Version is the SOAP version of the binding: 1.1 or 1.2.
	Version string `json:"soap_version"`
	// Input and Output are the names of the input and output messages.
	Input  string `json:"input"`
	Output string `json:"output,omitempty"`
	// Binding and Port name the binding and the first port using it.
	Binding string `json:"binding"`
	Port    string `json:"port,omitempty"`
	// Endpoint is the port's soap:address location ("" when no port uses
	// the binding: configure endpoint then).
	Endpoint string `json:"endpoint,omitempty"`
	// Namespace is the rpc wrapper element's namespace (soap:body
	// namespace).
	Namespace string `json:"namespace,omitempty"`
	// EncodingStyle is soap:body encodingStyle for encoded use.
	EncodingStyle string `json:"encoding_style,omitempty"`
	// Doc is the portType operation's documentation.
	Doc string `json:"documentation,omitempty"`

	svc       *Service
	in, out   *message
	inParts   []string // soap:body parts="" restriction; nil means all
	outParts  []string
	inLayout  *layout
	outLayout *layout
	inErr     error
	outErr    error
}

// layout is how a message appears in a SOAP Body.
type layout struct {
	// wrapper is the single element directly inside Body whose children are
	// the parameters (document/literal wrapped, rpc); nil for bare
	// document style, where the parameters are Body's children.
	wrapper *qname
	params  []*Param
}

type message struct {
	name  qname
	parts []part
}

type part struct {
	name    string
	element qname
	typ     qname
}

// Operations returns the operations of every SOAP binding, ordered by
// name and then version; an operation offered in SOAP 1.1 and 1.2 appears
// once per version.
func (s *Service) Operations() []Operation {
	out := make([]Operation, 0, len(s.ops))
	for _, op := range s.ops {
		out = append(out, *op)
	}
	return out
}

// Operation returns the operation named name in SOAP version (V11, V12,
// or "" for the default: the binding of the first port that offers it).
// The error wraps ErrUnknownOperation and lists what exists.
func (s *Service) Operation(name, version string) (*Operation, error) {
	var names []string
	seen := map[string]bool{}
	var other *Operation
	for _, op := range s.ops {
		if !seen[op.Name] {
			seen[op.Name] = true
			names = append(names, op.Name)
		}
		if op.Name != name {
			continue
		}
		if version == "" || op.Version == version {
			return op, nil
		}
		other = op
	}
	if other != nil {
		return nil, fmt.Errorf("%w %q in SOAP %s: the WSDL offers it in SOAP %s only", ErrUnknownOperation, name, version, other.Version)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q in %s (operations: %s)", ErrUnknownOperation, name, s.Location, strings.Join(names, ", "))
}

// Params returns the input parameters of the operation named name (default
// version): see Operation.Params.
func (s *Service) Params(name string) ([]*Param, error) {
	op, err := s.Operation(name, "")
	if err != nil {
		return nil, err
	}
	return op.Params()
}

// Params returns the operation's input parameters: the children of the
// request wrapper element for document/literal wrapped and rpc operations,
// the message's part elements for bare document style. An error means the
// schemas lack a type the message uses.
func (op *Operation) Params() ([]*Param, error) {
	if op.inErr != nil {
		return nil, op.inErr
	}
	return op.inLayout.params, nil
}

// OutputParams returns the output parameters, laid out as Params.
func (op *Operation) OutputParams() ([]*Param, error) {
	if op.outErr != nil {
		return nil, op.outErr
	}
	if op.outLayout == nil {
		return nil, nil
	}
	return op.outLayout.params, nil
}

// Wrapper returns the request wrapper element ("{urn:calc}Add"), "" for
// bare document style.
func (op *Operation) Wrapper() string {
	if op.inLayout == nil || op.inLayout.wrapper == nil {
		return ""
	}
	return op.inLayout.wrapper.String()
}

// loadedDoc is a parsed document and where it came from.
type loadedDoc struct {
	location string
	root     *etree.Element
}

// newService builds the Service from the main WSDL document, the WSDLs it
// imports, and the schemas (already indexed in set).
func newService(location string, wsdls []loadedDoc, set *schemaSet, docs []string) (*Service, error) {
	s := &Service{Location: location, schemas: set, messages: map[qname]*message{}, Documents: docs}
	main := wsdls[0].root
	s.TargetNamespace = attr(main, "targetNamespace")
	type portTypeOp struct {
		el      *etree.Element
		in, out qname
		doc     string
	}
	portTypes := map[qname]map[string]portTypeOp{}
	var bindings []*etree.Element
	bindingByName := map[qname]*etree.Element{}
	type portRef struct {
		name, address string
	}
	portsOf := map[qname][]portRef{}
	var bindingOrder []qname
	for _, d := range wsdls {
		tns := attr(d.root, "targetNamespace")
		for _, m := range children(d.root, NSWSDL, "message") {
			msg := &message{name: qname{tns, attr(m, "name")}}
			for _, p := range children(m, NSWSDL, "part") {
				pt := part{name: attr(p, "name")}
				if v := attr(p, "element"); v != "" {
					pt.element, _ = resolveQName(p, v, "")
				}
				if v := attr(p, "type"); v != "" {
					pt.typ, _ = resolveQName(p, v, "")
				}
				msg.parts = append(msg.parts, pt)
			}
			s.messages[msg.name] = msg
		}
		for _, pt := range children(d.root, NSWSDL, "portType") {
			ops := map[string]portTypeOp{}
			for _, o := range children(pt, NSWSDL, "operation") {
				name := attr(o, "name")
				if _, dup := ops[name]; dup {
					continue // overloaded operations: the first one wins
				}
				pto := portTypeOp{el: o, doc: documentation(o)}
				if in := child(o, NSWSDL, "input"); in != nil {
					pto.in, _ = resolveQName(in, attr(in, "message"), "")
				}
				if out := child(o, NSWSDL, "output"); out != nil {
					pto.out, _ = resolveQName(out, attr(out, "message"), "")
				}
				ops[name] = pto
			}
			portTypes[qname{tns, attr(pt, "name")}] = ops
		}
		for _, bd := range children(d.root, NSWSDL, "binding") {
			q := qname{tns, attr(bd, "name")}
			if _, dup := bindingByName[q]; dup {
				continue
			}
			bindings = append(bindings, bd)
			bindingByName[q] = bd
		}
		for _, sv := range children(d.root, NSWSDL, "service") {
			if s.Name == "" {
				s.Name = attr(sv, "name")
			}
			for _, p := range children(sv, NSWSDL, "port") {
				bq, _ := resolveQName(p, attr(p, "binding"), "")
				addr := ""
				for _, ns := range []string{NSWSDLSOAP11, NSWSDLSOAP12} {
					if a := child(p, ns, "address"); a != nil {
						addr = attr(a, "location")
					}
				}
				if len(portsOf[bq]) == 0 {
					bindingOrder = append(bindingOrder, bq)
				}
				portsOf[bq] = append(portsOf[bq], portRef{attr(p, "name"), addr})
			}
		}
	}
	// Bindings in port order first, then those no port uses.
	for _, bd := range bindings {
		q := qname{attr(bd.Parent(), "targetNamespace"), attr(bd, "name")}
		if len(portsOf[q]) == 0 {
			bindingOrder = append(bindingOrder, q)
		}
	}
	seen := map[string]bool{}
	for _, bq := range bindingOrder {
		bd, ok := bindingByName[bq]
		if !ok {
			continue
		}
		version, soapNS := "", ""
		switch {
		case child(bd, NSWSDLSOAP11, "binding") != nil:
			version, soapNS = V11, NSWSDLSOAP11
		case child(bd, NSWSDLSOAP12, "binding") != nil:
			version, soapNS = V12, NSWSDLSOAP12
		default:
			continue // HTTP GET/POST bindings are not SOAP
		}
		defStyle := attr(child(bd, soapNS, "binding"), "style")
		if defStyle == "" {
			defStyle = "document"
		}
		ptq, _ := resolveQName(bd, attr(bd, "type"), "")
		ptOps, ok := portTypes[ptq]
		if !ok {
			return nil, fmt.Errorf("%w: binding %s refers to portType %s, which is not defined", ErrBadWSDL, bq.Local, ptq)
		}
		var port portRef
		if ps := portsOf[bq]; len(ps) > 0 {
			port = ps[0]
		}
		for _, bo := range children(bd, NSWSDL, "operation") {
			name := attr(bo, "name")
			key := name + "\x00" + version
			if seen[key] {
				continue
			}
			pto, ok := ptOps[name]
			if !ok {
				return nil, fmt.Errorf("%w: binding %s has operation %s, which portType %s lacks", ErrBadWSDL, bq.Local, name, ptq.Local)
			}
			seen[key] = true
			op := &Operation{
				Name: name, Version: version, Style: defStyle, Use: "literal", Binding: bq.Local,
				Port: port.name, Endpoint: port.address, Doc: pto.doc, svc: s,
			}
			if so := child(bo, soapNS, "operation"); so != nil {
				op.Action = attr(so, "soapAction")
				if st := attr(so, "style"); st != "" {
					op.Style = st
				}
			}
			if in := child(bo, NSWSDL, "input"); in != nil {
				if body := child(in, soapNS, "body"); body != nil {
					if u := attr(body, "use"); u != "" {
						op.Use = u
					}
					op.Namespace = attr(body, "namespace")
					op.EncodingStyle = attr(body, "encodingStyle")
					if ps, ok := partsAttr(body); ok {
						op.inParts = ps
					}
				}
			}
			if out := child(bo, NSWSDL, "output"); out != nil {
				if body := child(out, soapNS, "body"); body != nil {
					if ps, ok := partsAttr(body); ok {
						op.outParts = ps
					}
				}
			}
			if op.Style != "document" && op.Style != "rpc" {
				return nil, fmt.Errorf("%w: operation %s: unknown style %q", ErrBadWSDL, name, op.Style)
			}
			if op.Use != "literal" && op.Use != "encoded" {
				return nil, fmt.Errorf("%w: operation %s: unknown use %q", ErrBadWSDL, name, op.Use)
			}
			if op.Use == "encoded" && op.EncodingStyle == "" {
				op.EncodingStyle = NSSOAPEnc11
				if version == V12 {
					op.EncodingStyle = NSSOAPEnc12
				}
			}
			op.in = s.messages[pto.in]
			if op.in == nil {
				return nil, fmt.Errorf("%w: operation %s: input message %s is not defined", ErrBadWSDL, name, pto.in)
			}
			op.Input = op.in.name.Local
			op.inLayout, op.inErr = s.layout(op, op.in, op.inParts, false)
			if pto.out.Local != "" {
				op.out = s.messages[pto.out]
				if op.out == nil {
					return nil, fmt.Errorf("%w: operation %s: output message %s is not defined", ErrBadWSDL, name, pto.out)
				}
				op.Output = op.out.name.Local
				op.outLayout, op.outErr = s.layout(op, op.out, op.outParts, true)
			}
			s.ops = append(s.ops, op)
		}
	}
	if len(s.ops) == 0 {
		return nil, fmt.Errorf("%w: %s has no SOAP 1.1 or 1.2 binding with operations", ErrBadWSDL, location)
	}
	sort.SliceStable(s.ops, func(i, j int) bool {
		if s.ops[i].Name != s.ops[j].Name {
			return s.ops[i].Name < s.ops[j].Name
		}
		return s.ops[i].Version < s.ops[j].Version
	})
	return s, nil
}

// partsAttr reads soap:body parts="a b"; ok is false when it is absent.
func partsAttr(body *etree.Element) ([]string, bool) {
	for _, a := range body.Attr {
		if a.Space == "" && a.Key == "parts" {
			return strings.Fields(a.Value), true
		}
	}
	return nil, false
}

// layout works out how msg appears in the Body.
func (s *Service) layout(op *Operation, msg *message, only []string, output bool) (*layout, error) {
	b := newBuilder(s.schemas)
	var parts []part
	for _, p := range msg.parts {
		if only != nil && !contains(only, p.name) {
			continue
		}
		parts = append(parts, p)
	}
	l := &layout{}
	if op.Style == "rpc" {
		name := op.Name
		if output {
			name += "Response"
		}
		l.wrapper = &qname{op.Namespace, name}
		for _, p := range parts {
			if p.element.Local != "" {
				l.params = append(l.params, b.globalElement(p.element))
				continue
			}
			pp := &Param{Name: p.name, MinOccurs: 1, MaxOccurs: 1}
			b.typeRef(pp, p.typ)
			l.params = append(l.params, pp)
		}
		return l, layoutErr(op, output, b.err())
	}
	for _, p := range parts {
		if p.element.Local == "" {
			// document style with type= parts (not WS-I): the part is an
			// unqualified element named after it.
			pp := &Param{Name: p.name, MinOccurs: 1, MaxOccurs: 1}
			b.typeRef(pp, p.typ)
			l.params = append(l.params, pp)
			continue
		}
		l.params = append(l.params, b.globalElement(p.element))
	}
	// Wrapped convention: one part whose element is complex.
	if len(parts) == 1 && parts[0].element.Local != "" && len(l.params) == 1 && l.params[0].Complex && !l.params[0].Recursive {
		w := parts[0].element
		l.wrapper = &w
		l.params = l.params[0].Children
	}
	return l, layoutErr(op, output, b.err())
}

func layoutErr(op *Operation, output bool, err error) error {
	if err == nil {
		return nil
	}
	dir := "input"
	if output {
		dir = "output"
	}
	return fmt.Errorf("operation %s %s: %w", op.Name, dir, err)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
