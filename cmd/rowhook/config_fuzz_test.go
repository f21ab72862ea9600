package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/pipeline"
)

// FuzzLoadConfig runs rowhook's whole config loader (YAML, ${VAR}
// expansion, every section's validation, webhook references, writeback and
// SOAP blocks) on arbitrary files. Errors are fine; a panic is not, and an
// error must name the file.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(checkConfig))
	f.Add([]byte("source:\n  dsn: mysql://u:p@h:1/\nrules:\n  - name: r\n    table: a.b\n    event: RowChanged\n    writeback:\n      table: a.b\n      key: {id: row.id}\n      set: {x: response.json.id}\n"))
	f.Add([]byte("source: {dsn: 'x'}\nwebhooks:\n  w:\n    url: http://h/\n    content_type: soap\n    soap: {wsdl: w.wsdl, operation: Op, params: {a: row.a}}\n"))
	f.Add([]byte("source:\n  dsn: ${NOPE:-mysql://h:1/}\nstate: {path: s.db, retention: -1h}\nhttp: {listen: 'bad'}\n"))
	f.Add([]byte("rules: [[[]]]\n"))
	f.Add([]byte("\xff\xfe: \x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		p := filepath.Join(dir, "rowhook.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := pipeline.Load(context.Background(), p)
		if err != nil && !strings.Contains(err.Error(), "rowhook.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
