package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// /readyz notices a state file that was made unwritable on its own (the
// directory still writable), and recovers when it is writable again.
func TestReadyz_StateFileNotWritable(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, _ := s.NewSchema(t)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
`, s.URL(), schema))
	p, _ := startTestPipeline(t, cfgPath)
	wait := func(code int, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, body := readyz(p.Addr())
			if got == code && strings.Contains(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz %d %s, want %d with %q", got, body, code, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(http.StatusOK, "")
	undo := makeReadOnly(t, filepath.Join(dir, "state.db"))
	wait(http.StatusServiceUnavailable, "state file not writable")
	undo()
	wait(http.StatusOK, "")
}
