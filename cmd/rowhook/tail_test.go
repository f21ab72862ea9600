package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) lines() []string {
	out := strings.TrimSpace(s.String())
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// startTail runs `rowhook tail args...` in the background; stop cancels it
// like SIGINT does and returns its error.
func startTail(t *testing.T, args ...string) (out, errOut *syncBuffer, stop func() error) {
	t.Helper()
	out, errOut = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"tail"}, args...), stdio{out: out, err: errOut}) }()
	return out, errOut, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("tail did not stop within 15s of cancel")
			return nil
		}
	}
}

func waitLines(t *testing.T, b *syncBuffer, n int, errOut *syncBuffer) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(b.lines()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("want %d lines, have %d; stderr:\n%s", n, len(b.lines()), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b.lines()
}

func TestTail_PrintsChangesAndResumes(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deal (id INT PRIMARY KEY, amount DECIMAL(10,2), stage VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "tail.checkpoint")
	args := []string{"--source", s.URL(), "--include", schema + ".*", "--checkpoint", cp}
	out, errOut, stop := startTail(t, args...)
	// Wait until the reader is connected at "current" before writing.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errOut.String(), "reading binlog") {
		if time.Now().After(deadline) {
			t.Fatalf("tail did not start: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := db.Exec("INSERT INTO deal VALUES (1, 99.90, 'Prospecting')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE deal SET stage = 'Won' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, out, 2, errOut)
	if err := stop(); err != nil {
		t.Fatalf("tail returned %v after SIGINT-like cancel; stderr:\n%s", err, errOut.String())
	}
	var first map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 is not JSON: %v\n%s", err, lines[0])
	}
	var keys []string
	for k := range first {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"after", "before", "changed", "file", "gtid", "id", "op", "pk", "pos", "row", "schema", "table", "ts", "tx"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	if string(first["op"]) != `"insert"` || string(first["before"]) != "null" ||
		string(first["after"]) != `{"amount":"99.90","id":1,"stage":"Prospecting"}` || string(first["pk"]) != `{"id":1}` {
		t.Errorf("insert line: %s", lines[0])
	}
	var second struct {
		Op      string   `json:"op"`
		Changed []string `json:"changed"`
		TS      string   `json:"ts"`
	}
	json.Unmarshal([]byte(lines[1]), &second)
	if second.Op != "update" || !reflect.DeepEqual(second.Changed, []string{"stage"}) {
		t.Errorf("update line: %s", lines[1])
	}
	if _, err := time.Parse(time.RFC3339, second.TS); err != nil {
		t.Errorf("ts %q is not RFC 3339: %v", second.TS, err)
	}
	if strings.Contains(out.String(), "INFO") {
		t.Errorf("logs leaked into stdout")
	}

	// Written while tail is down; a restart with the checkpoint prints only these.
	if _, err := db.Exec("DELETE FROM deal WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	out2, errOut2, stop2 := startTail(t, args...)
	lines2 := waitLines(t, out2, 1, errOut2)
	time.Sleep(300 * time.Millisecond)
	lines2 = out2.lines()
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if len(lines2) != 1 || !strings.Contains(lines2[0], `"op":"delete"`) {
		t.Fatalf("after resume got %d lines: %v", len(lines2), lines2)
	}
}

func TestTail_BadFlags(t *testing.T) {
	for _, args := range [][]string{{"tail"}, {"tail", "--start", "yesterday", "--source", "mysql://u@h/"}, {"tail", "--bogus"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, stdio{out: &out, err: &errOut})
		if err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"tail", "--source", "mysql://u@h/", "--start", "yesterday"}, stdio{out: &bytes.Buffer{}, err: &errOut})
	if err == nil || !strings.Contains(err.Error(), "source.start") || !strings.Contains(err.Error(), "yesterday") {
		t.Errorf("bad start error = %v", err)
	}
}
