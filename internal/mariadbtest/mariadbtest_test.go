package mariadbtest

import (
	"context"
	"testing"
	"time"
)

func TestStart_BinlogSettings(t *testing.T) {
	NeedBinary(t)
	s, err := Start(Options{ServerID: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var format, image, meta, logBin string
	var id int
	if err := s.DB().QueryRow("SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@log_bin, @@server_id").Scan(&format, &image, &meta, &logBin, &id); err != nil {
		t.Fatal(err)
	}
	if format != "ROW" || image != "FULL" || meta != "FULL" || logBin != "1" || id != 7 {
		t.Fatalf("got format=%s image=%s metadata=%s log_bin=%s server_id=%d", format, image, meta, logBin, id)
	}
	name, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE x (id INT PRIMARY KEY)"); err != nil {
		t.Fatalf("create table in %s: %v", name, err)
	}
}

func TestStartPair_Replicates(t *testing.T) {
	NeedBinary(t)
	p, err := StartPair(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	var lsu string
	if err := p.Replica.DB().QueryRow("SELECT @@log_slave_updates").Scan(&lsu); err != nil || lsu != "1" {
		t.Fatalf("replica log_slave_updates=%q err=%v", lsu, err)
	}
	p.Primary.Exec(t, "CREATE DATABASE pairtest")
	p.Primary.Exec(t, "CREATE TABLE pairtest.x (id INT PRIMARY KEY, v VARCHAR(10))")
	p.Primary.Exec(t, "INSERT INTO pairtest.x VALUES (1, 'one')")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := p.Replica.DB().QueryRow("SELECT v FROM pairtest.x WHERE id = 1").Scan(&v); err != nil || v != "one" {
		t.Fatalf("replica row: %q, %v", v, err)
	}
}

// Test packages run in parallel, each starting servers: concurrent
// bootstraps must not collide (they did on a shared tmpdir).
func TestStart_Concurrent(t *testing.T) {
	NeedBinary(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			s, err := Start(Options{})
			if err == nil {
				err = s.Stop()
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
