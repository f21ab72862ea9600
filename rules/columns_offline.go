package rules

import (
	"errors"
	"fmt"
	"sort"
)

// CheckColumns compiles each rule's condition and its YAML body's fields
// against column names known without a source connection (the binlog's
// TABLE_MAP metadata, as the rule studio keeps it): columns returns the
// columns of the tables a rule's table pattern names, nil when unknown
// (then nothing is checked for that rule). Errors are yamlconf path errors
// with did-you-mean suggestions, as New gives with a source.
func (c Config) CheckColumns(columns func(pattern string) []string) error {
	var errs []error
	for i, r := range c.Rules {
		names := columns(r.Table)
		if names == nil {
			continue
		}
		cs := &columnSet{table: r.Table, cols: map[string]bool{}}
		for _, n := range names {
			if !cs.cols[n] {
				cs.cols[n] = true
				cs.order = append(cs.order, n)
			}
		}
		sort.Strings(cs.order)
		if _, err := compileCondition(fmt.Sprintf("rules[%d].when", i), r.When, cs); err != nil {
			errs = append(errs, err)
		}
		if bc, ok := c.Bodies[r.Event]; ok {
			if _, err := compileYAMLBody(r.Event, bc, cs); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
