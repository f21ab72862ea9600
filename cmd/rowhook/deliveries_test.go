package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
)

// seedState writes a state file with one ok and one dead delivery.
func seedState(t *testing.T, dir string) (path, okID, deadID string) {
	t.Helper()
	path = filepath.Join(dir, "state.db")
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	mk := func(ev string) dispatch.NewDelivery {
		return dispatch.NewDelivery{ID: dispatch.DeliveryID(time.Time{}, ev, "erp", ""), EventID: ev, Rule: "new-deal", Event: "NewOpportunity",
			Webhook: "erp", Key: "crm.vtiger_potential:7", Method: "POST", URL: "https://erp.example.com/deals/7",
			ContentType: "application/json", Body: []byte(`{"id":7}`), EventTime: now, CreatedAt: now, NextAt: now}
	}
	a, b := mk("e1"), mk("e2")
	ctx := context.Background()
	if _, err := st.Commit(ctx, cdc.Checkpoint{File: "bin.1", Pos: 4}, []dispatch.NewDelivery{a, b}); err != nil {
		t.Fatal(err)
	}
	err = st.Record(ctx, []dispatch.Result{
		{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: 1, Kind: dispatch.KindAttempt, At: now, Duration: 12 * time.Millisecond, Method: "POST",
			URL: a.URL, RequestHeaders: map[string][]string{"Authorization": {send.Redacted}}, Status: 201, ResponseBody: []byte(`{"erp":"E-1"}`)},
			Status: dispatch.StatusOK, Attempts: 1},
		{Attempt: dispatch.Attempt{DeliveryID: b.ID, N: 1, Kind: dispatch.KindAttempt, At: now, Method: "POST", URL: b.URL, Status: 503, Error: "http 503 Service Unavailable"},
			Status: dispatch.StatusDead, Attempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, a.ID, b.ID
}

func runCmd(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return out.String(), errb.String(), err
}

func TestDeliveries_ListShow(t *testing.T) {
	path, okID, deadID := seedState(t, t.TempDir())
	out, _, err := runCmd("deliveries", "list", "--state", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, okID) || !strings.Contains(out, deadID) || !strings.Contains(out, "http 503") {
		t.Errorf("list:\n%s", out)
	}
	out, _, err = runCmd("deliveries", "list", "--state", path, "--status", "dead", "--since", "1h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v dispatch.DeliveryView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID != deadID || v.Status != dispatch.StatusDead {
		t.Errorf("list --json --status dead: %s (%v)", out, err)
	}
	// --search: a delivery id (or an event id or record key) finds only its own.
	out, _, err = runCmd("deliveries", "list", "--state", path, "--search", okID)
	if err != nil || !strings.Contains(out, okID) || strings.Contains(out, deadID) {
		t.Errorf("list --search %s: %s (%v), want only it", okID, out, err)
	}
	out, _, err = runCmd("deliveries", "show", okID, "--state", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Delivery " + okID, "status:     ok (1 attempts)", "Attempt 1", "> Authorization: [redacted]", "< 201", `< {"erp":"E-1"}`, `body:       {"id":7}`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runCmd("deliveries", "show", "msg_nope", "--state", path); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("show unknown id: %v", err)
	}
	for _, args := range [][]string{
		{"deliveries"},
		{"deliveries", "frob"},
		{"deliveries", "list"},
		{"deliveries", "list", "--state", path, "--status", "weird"},
		{"deliveries", "list", "--state", path, "--since", "yesterday"},
		{"deliveries", "show", "--state", path},
	} {
		_, _, err := runCmd(args...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if _, _, err := runCmd("deliveries", "list", "--state", filepath.Join(t.TempDir(), "missing.db")); err == nil || !strings.Contains(err.Error(), "rowhook run creates it") {
		t.Errorf("missing state file: %v", err)
	}
}

func TestRedeliver(t *testing.T) {
	dir := t.TempDir()
	path, okID, deadID := seedState(t, dir)
	cfgPath := filepath.Join(dir, "rowhook.yaml")
	writeCfg := func(allow bool) {
		// The source's password is not needed to re-queue: left unset.
		y := "source:\n  dsn: mysql://u:${ROWHOOK_TEST_UNSET_SOURCE_PW}@127.0.0.1:3306/\nstate:\n  path: state.db\nadmin:\n  allow_redeliver: " + map[bool]string{true: "true", false: "false"}[allow] + "\n"
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(false)
	if _, _, err := runCmd("redeliver", deadID, "--config", cfgPath); !errors.Is(err, dispatch.ErrRedeliverDisabled) {
		t.Errorf("redeliver with allow_redeliver false: %v", err)
	}
	if _, _, err := runCmd("redeliver", deadID, "--state", path); err == nil {
		t.Error("redeliver --state without --force accepted")
	}
	writeCfg(true)
	out, _, err := runCmd("redeliver", "--status", "dead", "--since", "24h", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each line: the id, and the stored request it sends again.
	if want := deadID + "\tPOST https://erp.example.com/deals/7\n"; out != want {
		t.Errorf("redeliver --status dead printed %q, want %q", out, want)
	}
	out, stderr, err := runCmd("redeliver", okID, deadID, "--state", path, "--force")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Fields(out)[0] != okID || !strings.Contains(stderr, "1 of 2 already pending") || !strings.Contains(stderr, "sent again as stored (method, URL, payload headers, body)") {
		t.Errorf("redeliver ids: out %q err %q", out, stderr)
	}
	_, help, _ := runCmd("redeliver", "--help")
	if !strings.Contains(help, "A re-run sends the stored request again: the method, URL, payload headers and body") {
		t.Errorf("redeliver --help does not say what is sent:\n%s", help)
	}
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, log, err := st.Get(context.Background(), deadID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != dispatch.StatusPending || d.Redelivered != 1 || !strings.HasPrefix(log[len(log)-1].Note, "redelivered by rowhook redeliver (") {
		t.Errorf("after redeliver: %+v %+v", d, log[len(log)-1])
	}
	if _, _, err := runCmd("redeliver", deadID, "--status", "dead", "--state", path, "--force"); err == nil {
		t.Error("ids with --status accepted")
	}
}

// A pending delivery's next attempt may be days away: the list shows its
// date, not only a time of day.
func TestDeliveries_ListNextAttemptDate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	next := now.Add(50 * time.Hour).Truncate(time.Second)
	d := dispatch.NewDelivery{ID: dispatch.DeliveryID(time.Time{}, "e9", "erp", ""), EventID: "e9", Rule: "new-deal", Event: "NewOpportunity",
		Webhook: "erp", Key: "crm.vtiger_potential:9", Method: "POST", URL: "https://erp.example.com/deals/9",
		ContentType: "application/json", Body: []byte(`{"id":9}`), EventTime: now, CreatedAt: now, NextAt: now}
	ctx := context.Background()
	if _, err := st.Commit(ctx, cdc.Checkpoint{File: "bin.1", Pos: 4}, []dispatch.NewDelivery{d}); err != nil {
		t.Fatal(err)
	}
	if err := st.Record(ctx, []dispatch.Result{{Attempt: dispatch.Attempt{DeliveryID: d.ID, N: 1, Kind: dispatch.KindAttempt, At: now,
		Method: "POST", URL: d.URL, Status: 503, Error: "http 503 Service Unavailable"}, Status: dispatch.StatusPending, Attempts: 1, NextAt: next}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, _, err := runCmd("deliveries", "list", "--state", path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "next " + next.Local().Format("2006-01-02 15:04:05"); !strings.Contains(out, want) {
		t.Errorf("list lacks %q:\n%s", want, out)
	}
}
