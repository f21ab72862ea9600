package studio

import (
	"go.yaml.in/yaml/v3"
)

// ruleYAML is the block to paste into the config: the rule under rules:
// and, for inline fields, a body function under bodies: named after it.
func ruleYAML(rd RuleDoc, inline string) string {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	rule := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	add(rule, "name", str(rd.Name))
	add(rule, "table", str(rd.Table))
	if len(rd.On) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, o := range rd.On {
			seq.Content = append(seq.Content, str(o))
		}
		add(rule, "on", seq)
	}
	if rd.When != "" {
		add(rule, "when", str(rd.When))
	}
	event := rd.Event
	var bodies *yaml.Node
	if event == inline && inline != "" {
		fields := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range rd.Body {
			add(fields, f.Name, str(f.Expr))
		}
		fn := &yaml.Node{Kind: yaml.MappingNode}
		add(fn, "fields", fields)
		bodies = &yaml.Node{Kind: yaml.MappingNode}
		add(bodies, event, fn)
	}
	add(rule, "event", str(event))
	if len(rd.Webhooks) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, w := range rd.Webhooks {
			seq.Content = append(seq.Content, str(w))
		}
		add(rule, "webhooks", seq)
	}
	if rd.Once {
		add(rule, "once", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add(root, "rules", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{rule}})
	if bodies != nil {
		add(root, "bodies", bodies)
	}
	b, err := yaml.Marshal(root)
	if err != nil {
		return ""
	}
	return string(b)
}
