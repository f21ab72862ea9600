package send

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
)

// urlTemplate is a webhook URL with {{ scope.name }} placeholders, filled
// from the event per delivery. Values are escaped for where they stand: path
// escaping before the '?', query escaping after it.
type urlTemplate struct {
	parts []urlPart
}

type urlPart struct {
	lit     string
	scope   string // row, old, pk, event, body; "" for a literal
	name    string
	inQuery bool
}

var templateScopes = map[string]bool{"row": true, "old": true, "pk": true, "event": true, "body": true}

// CheckURLTemplate reports what is wrong with a webhook URL template (for
// config validation), nil when Build can use it.
func CheckURLTemplate(s string) error {
	_, err := parseURLTemplate(s)
	return err
}

func parseURLTemplate(s string) (*urlTemplate, error) {
	t := &urlTemplate{}
	rest := s
	inQuery := false
	var probe strings.Builder
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, urlPart{lit: rest})
			probe.WriteString(rest)
			break
		}
		lit := rest[:i]
		if strings.Contains(lit, "?") {
			inQuery = true
		}
		t.parts = append(t.parts, urlPart{lit: lit})
		probe.WriteString(lit)
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{ at offset %d", len(s)-len(rest)+i)
		}
		expr := strings.TrimSpace(rest[i+2 : i+j])
		scope, name, ok := strings.Cut(expr, ".")
		if !ok || name == "" || !templateScopes[scope] {
			return nil, fmt.Errorf("template {{ %s }}: want row.COLUMN, old.COLUMN, pk.COLUMN, body.FIELD, event.name, event.rule or event.id", expr)
		}
		if scope == "event" && name != "name" && name != "rule" && name != "id" {
			return nil, fmt.Errorf("template {{ %s }}: event has name, rule and id", expr)
		}
		t.parts = append(t.parts, urlPart{scope: scope, name: name, inQuery: inQuery})
		probe.WriteString("x")
		rest = rest[i+j+2:]
	}
	u, err := url.Parse(probe.String())
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("no host in %q", s)
	}
	return t, nil
}

// static reports whether the template has no placeholders.
func (t *urlTemplate) static() bool { return len(t.parts) == 1 }

// render fills the template from ev. A missing value is an error: sending to
// a URL with a hole would reach the wrong resource.
func (t *urlTemplate) render(ev *rules.Event) (string, error) {
	if t.static() {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.scope == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := lookupTemplate(ev, p.scope, p.name)
		if !ok || v == nil {
			return "", fmt.Errorf("url template: %s.%s has no value in event %s", p.scope, p.name, ev.ID)
		}
		s := templateString(v)
		if p.inQuery {
			b.WriteString(url.QueryEscape(s))
		} else {
			b.WriteString(url.PathEscape(s))
		}
	}
	return b.String(), nil
}

func lookupTemplate(ev *rules.Event, scope, name string) (any, bool) {
	var row cdc.Row
	switch scope {
	case "event":
		switch name {
		case "name":
			return ev.Name, true
		case "rule":
			return ev.Rule, true
		case "id":
			return ev.ID, true
		}
		return nil, false
	case "body":
		return ev.Body.Get(name)
	case "row":
		if ev.Change != nil {
			row = ev.Change.Image()
		}
	case "old":
		if ev.Change != nil {
			row = ev.Change.Before
		}
	case "pk":
		if ev.Change != nil {
			row = ev.Change.PK
		}
	}
	v, ok := row[name]
	return v, ok
}

func templateString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case cdc.Decimal:
		return string(x)
	case []byte:
		return string(x)
	case cdc.Bytes:
		return string(x)
	}
	return fmt.Sprint(v)
}
