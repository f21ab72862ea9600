package soap

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Param is one input (or output) parameter of an operation: an XSD element
// or attribute with its type, occurrence bounds and, for complex types, its
// children in schema order.
type Param struct {
	// Name is the element's (or attribute's) local name.
	Name string `json:"name"`
	// Namespace is the element's namespace when it is qualified (global
	// elements, or elementFormDefault/form "qualified"), "" otherwise.
	Namespace string `json:"namespace,omitempty"`
	// Type is the declared type: "xsd:int" for built-in types, the local
	// name of a named schema type ("OrderLine"), "" for an anonymous type.
	Type string `json:"type,omitempty"`
	// TypeNamespace is the namespace of a named schema type.
	TypeNamespace string `json:"type_namespace,omitempty"`
	// Base is the built-in XSD type a simple value is written as
	// ("xsd:string" for a restriction of string); "" for complex types.
	Base string `json:"base,omitempty"`
	// MinOccurs and MaxOccurs bound how many times the element appears;
	// MaxOccurs -1 is unbounded. A parameter with MaxOccurs other than 1 is
	// an array: map it to a list.
	MinOccurs int `json:"min_occurs"`
	MaxOccurs int `json:"max_occurs"`
	// Nillable elements may be sent as xsi:nil="true" (a nil value).
	Nillable bool `json:"nillable,omitempty"`
	// Attribute marks an XML attribute of the parent element.
	Attribute bool `json:"attribute,omitempty"`
	// Choice marks alternatives of an xsd:choice: send one of them.
	Choice bool `json:"choice,omitempty"`
	// Complex is set for complex types (even with no children).
	Complex bool `json:"complex,omitempty"`
	// Any marks an xsd:any wildcard, which cannot be mapped.
	Any bool `json:"any,omitempty"`
	// Recursive marks a type that contains itself; its children are listed
	// at its first occurrence only.
	Recursive bool `json:"recursive,omitempty"`
	// Enum lists the allowed values of an enumeration.
	Enum []string `json:"enum,omitempty"`
	// Facets are the other restrictions (length, minLength, maxLength,
	// pattern, minInclusive, maxInclusive, totalDigits, fractionDigits…).
	Facets map[string]string `json:"facets,omitempty"`
	// EncodedArray marks a SOAP-encoded array (soapenc:Array): its single
	// child is the item.
	EncodedArray bool `json:"encoded_array,omitempty"`
	// Doc is the schema's documentation of the element.
	Doc string `json:"documentation,omitempty"`
	// Children are the elements and attributes of a complex type.
	Children []*Param `json:"children,omitempty"`
}

// IsArray reports whether the parameter may repeat.
func (p *Param) IsArray() bool { return p.MaxOccurs != 1 }

// Child returns the child named name, or nil.
func (p *Param) Child(name string) *Param { return findParam(p.Children, name) }

func findParam(ps []*Param, name string) *Param {
	for _, c := range ps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Occurs renders the bounds as "[0..1]", "[1..*]".
func (p *Param) Occurs() string {
	max := "*"
	if p.MaxOccurs >= 0 {
		max = strconv.Itoa(p.MaxOccurs)
	}
	return fmt.Sprintf("[%d..%s]", p.MinOccurs, max)
}

// schemaDoc is one xsd:schema element and its defaults.
type schemaDoc struct {
	root       *etree.Element
	tns        string
	qualElems  bool
	qualAttrs  bool
	defaultTNS string // for unprefixed QNames without a default namespace
}

type decl struct {
	el *etree.Element
	sc *schemaDoc
}

// schemaSet indexes the global declarations of every loaded schema.
type schemaSet struct {
	elements   map[qname]decl
	types      map[qname]decl
	groups     map[qname]decl
	attrGroups map[qname]decl
	attributes map[qname]decl
	namespaces map[string]bool
}

func newSchemaSet() *schemaSet {
	return &schemaSet{
		elements: map[qname]decl{}, types: map[qname]decl{}, groups: map[qname]decl{},
		attrGroups: map[qname]decl{}, attributes: map[qname]decl{}, namespaces: map[string]bool{},
	}
}

// add indexes the schema rooted at root. chameleonTNS is the including
// schema's namespace for an xsd:include of a schema without one.
func (s *schemaSet) add(root *etree.Element, chameleonTNS string) *schemaDoc {
	sc := &schemaDoc{
		root:      root,
		tns:       attr(root, "targetNamespace"),
		qualElems: attr(root, "elementFormDefault") == "qualified",
		qualAttrs: attr(root, "attributeFormDefault") == "qualified",
	}
	if sc.tns == "" && chameleonTNS != "" {
		sc.tns, sc.defaultTNS = chameleonTNS, chameleonTNS
	}
	s.namespaces[sc.tns] = true
	for _, c := range root.ChildElements() {
		if space(c) != NSXSD {
			continue
		}
		name := attr(c, "name")
		if name == "" {
			continue
		}
		q := qname{sc.tns, name}
		var m map[qname]decl
		switch c.Tag {
		case "element":
			m = s.elements
		case "complexType", "simpleType":
			m = s.types
		case "group":
			m = s.groups
		case "attributeGroup":
			m = s.attrGroups
		case "attribute":
			m = s.attributes
		default:
			continue
		}
		if _, dup := m[q]; !dup {
			m[q] = decl{c, sc}
		}
	}
	return sc
}

// maxParamDepth bounds nesting so that pathological schemas cannot exhaust
// the stack.
const maxParamDepth = 64

// maxParams bounds the parameters one message expands to: a schema whose
// types reuse each other at every level would otherwise grow exponentially.
const maxParams = 5000

// builder turns schema declarations into Param trees.
type builder struct {
	set   *schemaSet
	stack map[qname]bool
	depth int
	nodes int
	errs  []string
}

// grow counts one more parameter; false once the budget is spent.
func (b *builder) grow() bool {
	b.nodes++
	if b.nodes > maxParams {
		b.errf("the message expands to more than %d parameters; rowhook cannot map a schema that large", maxParams)
		return false
	}
	return true
}

func newBuilder(set *schemaSet) *builder { return &builder{set: set, stack: map[qname]bool{}} }

func (b *builder) errf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, e := range b.errs {
		if e == msg {
			return
		}
	}
	b.errs = append(b.errs, msg)
}

func (b *builder) err() error {
	if len(b.errs) == 0 {
		return nil
	}
	sort.Strings(b.errs)
	return fmt.Errorf("%w: %s", ErrBadWSDL, strings.Join(b.errs, "; "))
}

func occurs(e *etree.Element, key string) int {
	v := strings.TrimSpace(attr(e, key))
	switch v {
	case "":
		return 1
	case "unbounded":
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 1
	}
	return n
}

// globalElement builds the Param of the global element q.
func (b *builder) globalElement(q qname) *Param {
	d, ok := b.set.elements[q]
	if !ok {
		b.errf("element %s is not defined in any loaded schema%s", q, b.nsHint(q.Space))
		return &Param{Name: q.Local, Namespace: q.Space, MinOccurs: 1, MaxOccurs: 1}
	}
	return b.element(d.el, d.sc, true)
}

func (b *builder) nsHint(ns string) string {
	if b.set.namespaces[ns] {
		return ""
	}
	return fmt.Sprintf(" (no schema with targetNamespace %q was loaded: is an xsd:import missing its schemaLocation?)", ns)
}

// element builds the Param of an xsd:element declaration.
func (b *builder) element(e *etree.Element, sc *schemaDoc, global bool) *Param {
	if !b.grow() {
		return &Param{Name: attr(e, "name"), MinOccurs: 1, MaxOccurs: 1}
	}
	if b.depth > maxParamDepth {
		b.errf("schema nesting deeper than %d levels", maxParamDepth)
		return &Param{Name: attr(e, "name"), MinOccurs: 1, MaxOccurs: 1}
	}
	b.depth++
	defer func() { b.depth-- }()
	if ref := attr(e, "ref"); ref != "" {
		q, _ := resolveQName(e, ref, sc.defaultTNS)
		key := qname{"#element", q.String()}
		var p *Param
		if b.stack[key] {
			p = &Param{Name: q.Local, Namespace: q.Space, Recursive: true, Complex: true}
		} else {
			b.stack[key] = true
			p = b.globalElement(q)
			delete(b.stack, key)
		}
		cp := *p
		cp.MinOccurs, cp.MaxOccurs = occurs(e, "minOccurs"), occurs(e, "maxOccurs")
		if d := documentation(e); d != "" {
			cp.Doc = d
		}
		return &cp
	}
	p := &Param{Name: attr(e, "name"), MinOccurs: 1, MaxOccurs: 1, Doc: documentation(e)}
	if !global {
		p.MinOccurs, p.MaxOccurs = occurs(e, "minOccurs"), occurs(e, "maxOccurs")
	}
	p.Nillable = attr(e, "nillable") == "true" || attr(e, "nillable") == "1"
	form := attr(e, "form")
	if global || form == "qualified" || (form == "" && sc.qualElems) {
		p.Namespace = sc.tns
	}
	switch {
	case attr(e, "type") != "":
		q, ok := resolveQName(e, attr(e, "type"), sc.defaultTNS)
		if !ok {
			b.errf("element %s: type %q uses an undeclared prefix", p.Name, attr(e, "type"))
		}
		b.typeRef(p, q)
	case child(e, NSXSD, "complexType") != nil:
		b.complex(p, child(e, NSXSD, "complexType"), sc)
	case child(e, NSXSD, "simpleType") != nil:
		b.simple(p, child(e, NSXSD, "simpleType"), sc)
	default:
		p.Type, p.Base = "xsd:anyType", "xsd:anyType"
	}
	return p
}

// builtin reports whether q names a built-in simple type (XSD or the SOAP
// encoding's copies of them) and returns its "xsd:" name.
func builtin(q qname) (string, bool) {
	switch q.Space {
	case NSXSD, NSSOAPEnc11, NSSOAPEnc12, "http://www.w3.org/1999/XMLSchema", "http://www.w3.org/2000/10/XMLSchema":
		if q.Local == "Array" || q.Local == "Struct" {
			return "", false
		}
		return "xsd:" + q.Local, true
	}
	return "", false
}

// typeRef applies the named type q to p.
func (b *builder) typeRef(p *Param, q qname) {
	if name, ok := builtin(q); ok {
		p.Type, p.Base = name, name
		return
	}
	d, ok := b.set.types[q]
	if !ok {
		if q.Space == NSSOAPEnc11 && q.Local == "Array" {
			p.Type, p.TypeNamespace, p.Complex, p.EncodedArray = q.Local, q.Space, true, true
			p.Children = []*Param{{Name: "item", Type: "xsd:anyType", Base: "xsd:anyType", MinOccurs: 0, MaxOccurs: -1}}
			return
		}
		b.errf("type %s (of %s) is not defined in any loaded schema%s", q, p.Name, b.nsHint(q.Space))
		p.Type, p.TypeNamespace = q.Local, q.Space
		return
	}
	p.Type, p.TypeNamespace = q.Local, q.Space
	if d.el.Tag == "simpleType" {
		b.simple(p, d.el, d.sc)
		return
	}
	if b.stack[q] {
		p.Complex, p.Recursive = true, true
		return
	}
	b.stack[q] = true
	b.complex(p, d.el, d.sc)
	delete(b.stack, q)
}

// simple applies a simpleType definition: base type and facets.
func (b *builder) simple(p *Param, st *etree.Element, sc *schemaDoc) {
	if b.depth > maxParamDepth {
		b.errf("schema nesting deeper than %d levels", maxParamDepth)
		return
	}
	b.depth++
	defer func() { b.depth-- }()
	if r := child(st, NSXSD, "restriction"); r != nil {
		if base := attr(r, "base"); base != "" {
			q, _ := resolveQName(r, base, sc.defaultTNS)
			if name, ok := builtin(q); ok {
				p.Base = name
			} else if d, ok := b.set.types[q]; ok && d.el.Tag == "simpleType" {
				if b.stack[q] {
					b.errf("simple type %s derives from itself", q)
					return
				}
				b.stack[q] = true
				b.simple(p, d.el, d.sc)
				delete(b.stack, q)
			} else {
				b.errf("simple type base %s (of %s) is not defined%s", q, p.Name, b.nsHint(q.Space))
			}
		} else if inner := child(r, NSXSD, "simpleType"); inner != nil {
			b.simple(p, inner, sc)
		}
		b.facets(p, r)
		return
	}
	// xsd:list and xsd:union values are whitespace-separated or free text.
	p.Base = "xsd:string"
}

func (b *builder) facets(p *Param, r *etree.Element) {
	var enum []string
	for _, f := range r.ChildElements() {
		if space(f) != NSXSD || f.Tag == "annotation" || f.Tag == "simpleType" {
			continue
		}
		v := attr(f, "value")
		if f.Tag == "enumeration" {
			enum = append(enum, v)
			continue
		}
		if p.Facets == nil {
			p.Facets = map[string]string{}
		}
		p.Facets[f.Tag] = v
	}
	if enum != nil {
		p.Enum = enum // the most derived enumeration wins
	}
}

// complex expands a complexType into p's children.
func (b *builder) complex(p *Param, ct *etree.Element, sc *schemaDoc) {
	if b.nodes > maxParams {
		return
	}
	if b.depth > maxParamDepth {
		b.errf("schema nesting deeper than %d levels", maxParamDepth)
		return
	}
	b.depth++
	defer func() { b.depth-- }()
	p.Complex = true
	if cc := child(ct, NSXSD, "complexContent"); cc != nil {
		if ext := child(cc, NSXSD, "extension"); ext != nil {
			q, _ := resolveQName(ext, attr(ext, "base"), sc.defaultTNS)
			b.baseContent(p, q)
			b.particles(p, ext, sc, false, false)
			return
		}
		if r := child(cc, NSXSD, "restriction"); r != nil {
			q, _ := resolveQName(r, attr(r, "base"), sc.defaultTNS)
			if q.Space == NSSOAPEnc11 && q.Local == "Array" {
				b.encodedArray(p, r, sc)
				return
			}
			b.particles(p, r, sc, false, false)
			return
		}
	}
	if scn := child(ct, NSXSD, "simpleContent"); scn != nil {
		p.Complex = false
		for _, d := range []string{"extension", "restriction"} {
			if x := child(scn, NSXSD, d); x != nil {
				q, _ := resolveQName(x, attr(x, "base"), sc.defaultTNS)
				if name, ok := builtin(q); ok {
					p.Base = name
				} else if td, ok := b.set.types[q]; ok && td.el.Tag == "simpleType" {
					b.simple(p, td.el, td.sc)
				} else if ok && !b.stack[q] {
					b.stack[q] = true
					b.complex(p, td.el, td.sc)
					delete(b.stack, q)
					p.Complex = false
				} else if !ok {
					b.errf("simple content base %s (of %s) is not defined%s", q, p.Name, b.nsHint(q.Space))
				}
				b.facets(p, x)
				b.particles(p, x, sc, false, false)
			}
		}
		return
	}
	b.particles(p, ct, sc, false, false)
}

// baseContent adds the content of the complex base type q (extension).
func (b *builder) baseContent(p *Param, q qname) {
	if q.Space == NSXSD && q.Local == "anyType" {
		return
	}
	d, ok := b.set.types[q]
	if !ok || d.el.Tag != "complexType" {
		b.errf("base type %s (of %s) is not a defined complex type%s", q, p.Name, b.nsHint(q.Space))
		return
	}
	if b.stack[q] {
		p.Recursive = true
		return
	}
	b.stack[q] = true
	b.complex(p, d.el, d.sc)
	delete(b.stack, q)
}

// encodedArray models a soapenc:Array restriction: one repeated item
// whose type comes from the wsdl:arrayType attribute ("tns:Item[]").
func (b *builder) encodedArray(p *Param, r *etree.Element, sc *schemaDoc) {
	p.EncodedArray = true
	item := &Param{Name: "item", MinOccurs: 0, MaxOccurs: -1, Type: "xsd:anyType", Base: "xsd:anyType"}
	for _, a := range r.FindElements(".//*") {
		if a.Tag != "attribute" || space(a) != NSXSD {
			continue
		}
		if at, ok := attrNS(a, NSWSDL, "arrayType"); ok {
			at = strings.TrimSpace(at)
			if i := strings.Index(at, "["); i > 0 {
				at = at[:i]
			}
			q, _ := resolveQName(a, at, sc.defaultTNS)
			b.typeRef(item, q)
		}
	}
	if seq := child(r, NSXSD, "sequence"); seq != nil && item.Type == "xsd:anyType" {
		if el := child(seq, NSXSD, "element"); el != nil {
			it := b.element(el, sc, false)
			it.MinOccurs, it.MaxOccurs = 0, -1
			item = it
		}
	}
	p.Children = []*Param{item}
}

// particles adds the elements and attributes inside a model group
// container (complexType, sequence, choice, all, extension, group).
func (b *builder) particles(p *Param, container *etree.Element, sc *schemaDoc, inChoice, optional bool) {
	if b.depth > maxParamDepth {
		b.errf("schema nesting deeper than %d levels", maxParamDepth)
		return
	}
	b.depth++
	defer func() { b.depth-- }()
	for _, c := range container.ChildElements() {
		if space(c) != NSXSD {
			continue
		}
		switch c.Tag {
		case "element":
			cp := b.element(c, sc, false)
			cp.Choice = inChoice
			if optional {
				cp.MinOccurs = 0
			}
			if rep := occurs(container, "maxOccurs"); rep != 1 && container.Tag != "complexType" && container.Tag != "extension" && container.Tag != "restriction" {
				cp.MaxOccurs = -1
			}
			p.Children = append(p.Children, cp)
		case "sequence", "all":
			b.particles(p, c, sc, inChoice, optional || occurs(c, "minOccurs") == 0)
		case "choice":
			b.particles(p, c, sc, true, optional || occurs(c, "minOccurs") == 0)
		case "group":
			q, _ := resolveQName(c, attr(c, "ref"), sc.defaultTNS)
			d, ok := b.set.groups[q]
			if !ok {
				b.errf("group %s (in %s) is not defined%s", q, p.Name, b.nsHint(q.Space))
				continue
			}
			key := qname{"#group", q.String()}
			if b.stack[key] {
				p.Recursive = true
				continue
			}
			b.stack[key] = true
			b.particles(p, d.el, d.sc, inChoice, optional || occurs(c, "minOccurs") == 0)
			delete(b.stack, key)
		case "any":
			p.Children = append(p.Children, &Param{Name: "*", Any: true, Type: "xsd:any", MinOccurs: occurs(c, "minOccurs"), MaxOccurs: occurs(c, "maxOccurs"), Choice: inChoice})
		case "attribute":
			if a := b.attribute(c, sc); a != nil {
				p.Children = append(p.Children, a)
			}
		case "attributeGroup":
			q, _ := resolveQName(c, attr(c, "ref"), sc.defaultTNS)
			d, ok := b.set.attrGroups[q]
			if !ok {
				b.errf("attribute group %s (in %s) is not defined%s", q, p.Name, b.nsHint(q.Space))
				continue
			}
			key := qname{"#attributeGroup", q.String()}
			if b.stack[key] {
				continue
			}
			b.stack[key] = true
			b.particles(p, d.el, d.sc, false, false)
			delete(b.stack, key)
		}
	}
}

// attribute builds the Param of an xsd:attribute; nil for attributes of
// the SOAP encoding and XML Schema instance machinery.
func (b *builder) attribute(a *etree.Element, sc *schemaDoc) *Param {
	if !b.grow() {
		return nil
	}
	p := &Param{Attribute: true, MinOccurs: 0, MaxOccurs: 1, Doc: documentation(a)}
	if attr(a, "use") == "required" {
		p.MinOccurs = 1
	}
	if attr(a, "use") == "prohibited" {
		return nil
	}
	target, tsc := a, sc
	if ref := attr(a, "ref"); ref != "" {
		q, _ := resolveQName(a, ref, sc.defaultTNS)
		switch q.Space {
		case NSSOAPEnc11, NSSOAPEnc12, NSXSI, NSWSDL, "http://www.w3.org/XML/1998/namespace":
			return nil
		}
		d, ok := b.set.attributes[q]
		if !ok {
			b.errf("attribute %s is not defined%s", q, b.nsHint(q.Space))
			return nil
		}
		target, tsc = d.el, d.sc
		p.Name, p.Namespace = q.Local, q.Space
	} else {
		p.Name = attr(a, "name")
		form := attr(a, "form")
		if form == "qualified" || (form == "" && sc.qualAttrs) || a.Parent() == sc.root {
			p.Namespace = sc.tns
		}
	}
	switch {
	case attr(target, "type") != "":
		q, _ := resolveQName(target, attr(target, "type"), tsc.defaultTNS)
		b.typeRef(p, q)
	case child(target, NSXSD, "simpleType") != nil:
		b.simple(p, child(target, NSXSD, "simpleType"), tsc)
	default:
		p.Type, p.Base = "xsd:string", "xsd:string"
	}
	if p.Complex {
		b.errf("attribute %s has a complex type", p.Name)
		p.Complex, p.Children = false, nil
	}
	return p
}
