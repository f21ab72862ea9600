package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// Statements the version before body blocks (74f2c2a) prepares when it
// opens a state file, copied as they were: the first of its readers'
// (prepared by every open, read-only too), its deliveries' insert and its
// re-render.
const (
	oldSelect = `SELECT seq, id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, body, change, event_time, created_at, next_at, updated_at, status, attempts, last_status, last_error,
	redelivered, writeback, writeback_error, response FROM deliveries INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? AND next_at <= ? ORDER BY next_at, seq LIMIT ?`
	oldInsert = `INSERT INTO deliveries
		(id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
		 headers, body, change, event_time, created_at, next_at, updated_at, status, last_error)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`
	oldRerender = `UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?,
			updated_at = ?, redelivered = redelivered + 1, last_error = '',
			method = ?, url = ?, content_type = ?, headers = ?, body = ? WHERE id = ?`
)

// TestStore_EarlierVersionRefused: an earlier rowhook cannot open a file
// this version wrote, new or migrated, so it never reads the bodies in
// blocks as empty. It runs its schema (CREATE … IF NOT EXISTS, changing
// nothing here) and then prepares its statements, which fail.
func TestStore_EarlierVersionRefused(t *testing.T) {
	ctx := context.Background()
	fresh := filepath.Join(t.TempDir(), "state.db")
	s := open(t, fresh)
	if _, err := s.Commit(ctx, cp(1), batch("big", 100)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE body_ref IS NOT NULL`); n != 100 {
		t.Fatalf("%d deliveries in blocks, want 100", n)
	}
	s.Close()
	migrated := oldFile(t, batch("old", 3))
	open(t, migrated).Close()
	for name, path := range map[string]string{"new file": fresh, "migrated file": migrated} {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		if name == "new file" {
			var version string
			if err := db.QueryRow(`SELECT sqlite_version()`).Scan(&version); err != nil {
				t.Fatal(err)
			}
			t.Logf("SQLite %s (RENAME COLUMN since 3.25)", version)
		}
		if _, err := db.Exec(schemaV1); err != nil {
			t.Errorf("%s: the earlier schema: %v", name, err)
		}
		for _, q := range []string{oldSelect, oldInsert, oldRerender} {
			st, err := db.Prepare(q)
			if err == nil {
				st.Close()
				t.Errorf("%s: the earlier version prepares %.40q…", name, q)
			} else if !strings.Contains(err.Error(), "no such column: body") && !strings.Contains(err.Error(), "no column named body") {
				t.Errorf("%s: %.40q… fails with %v, want no such column body", name, q, err)
			}
		}
		// This version's statements work on it.
		if n := count(t, &Store{r: db}, `SELECT count(*) FROM deliveries WHERE body_inline IS NOT NULL OR body_ref IS NOT NULL`); n == 0 {
			t.Errorf("%s: no bodies", name)
		}
		db.Close()
	}
}

// TestStore_MigrateBodyRefWithoutRename: a file of the version that added
// body_ref but kept the body column (d3c4561) reads as it is read-only,
// and a read-write open renames the column, keeping the bodies.
func TestStore_MigrateBodyRefWithoutRename(t *testing.T) {
	old := batch("old", 5)
	path := oldFile(t, old)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE deliveries ADD COLUMN body_ref INTEGER`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got := bodiesOf(t, ro)
	ro.Close()
	s := open(t, path)
	if n := count(t, s, `SELECT count(*) FROM pragma_table_info('deliveries') WHERE name = 'body'`); n != 0 {
		t.Error("deliveries.body is still there after migration")
	}
	again := bodiesOf(t, s)
	for _, d := range old {
		if string(got[d.ID]) != string(d.Body) || string(again[d.ID]) != string(d.Body) {
			t.Errorf("%s body = %q read-only, %q migrated; want %q", d.EventID, got[d.ID], again[d.ID], d.Body)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE body_inline IS NOT NULL`); n != len(old) {
		t.Errorf("%d inline bodies after migration, want %d", n, len(old))
	}
}
