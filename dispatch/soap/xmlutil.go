package soap

import (
	"strings"

	"github.com/beevik/etree"
)

// qname is an expanded XML name.
type qname struct{ Space, Local string }

func (q qname) String() string {
	if q.Space == "" {
		return q.Local
	}
	return "{" + q.Space + "}" + q.Local
}

// nsURI returns the namespace bound to prefix in e's scope ("" is the
// default namespace); ok is false when the prefix is not declared.
func nsURI(e *etree.Element, prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return "http://www.w3.org/XML/1998/namespace", true
	case "xmlns":
		return "http://www.w3.org/2000/xmlns/", true
	}
	for ; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, true
			}
		}
	}
	return "", prefix == ""
}

// resolveQName expands a QName-valued attribute ("tns:Order") in e's scope.
// An unprefixed name takes the default namespace, or def when none is
// declared (chameleon includes).
func resolveQName(e *etree.Element, v string, def string) (qname, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return qname{}, false
	}
	prefix, local, found := strings.Cut(v, ":")
	if !found {
		local, prefix = prefix, ""
	}
	ns, ok := nsURI(e, prefix)
	if !ok {
		return qname{Local: local}, false
	}
	if prefix == "" && ns == "" {
		ns = def
	}
	return qname{ns, local}, true
}

// space returns e's namespace URI.
func space(e *etree.Element) string {
	ns, _ := nsURI(e, e.Space)
	return ns
}

// is reports whether e is the element {ns}local.
func is(e *etree.Element, ns, local string) bool {
	return e != nil && e.Tag == local && space(e) == ns
}

// children returns e's child elements named {ns}local.
func children(e *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// child returns e's first child element named {ns}local, or nil.
func child(e *etree.Element, ns, local string) *etree.Element {
	for _, c := range e.ChildElements() {
		if is(c, ns, local) {
			return c
		}
	}
	return nil
}

func attr(e *etree.Element, key string) string {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

// attrNS returns the value of the attribute {ns}key.
func attrNS(e *etree.Element, ns, key string) (string, bool) {
	for _, a := range e.Attr {
		if a.Key == key && a.Space != "" && a.Space != "xmlns" {
			if u, ok := nsURI(e, a.Space); ok && u == ns {
				return a.Value, true
			}
		}
	}
	return "", false
}

// documentation returns the text of e's xsd:annotation/xsd:documentation
// or wsdl:documentation child, trimmed.
func documentation(e *etree.Element) string {
	if d := child(e, NSWSDL, "documentation"); d != nil {
		return strings.Join(strings.Fields(d.Text()), " ")
	}
	if a := child(e, NSXSD, "annotation"); a != nil {
		if d := child(a, NSXSD, "documentation"); d != nil {
			return strings.Join(strings.Fields(d.Text()), " ")
		}
	}
	return ""
}
