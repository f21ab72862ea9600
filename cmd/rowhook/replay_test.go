package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/vtiger"
)

const replayAccountScript = `SET @user = 1;
SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s');
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
SET @account_crmid = LAST_INSERT_ID();
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(@account_crmid,@user,@user,0,'Accounts','',@user,@now,@now,'CRM','Acme Corp');
insert into vtiger_account(accountid,account_no,accountname) values(@account_crmid,'ACC1','Acme Corp');
insert into vtiger_accountscf(accountid) values(@account_crmid);
`

func binlogPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	for i := range vals {
		vals[i] = new(sql.RawBytes)
	}
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row")
	}
	if err := rows.Scan(vals...); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%s", *vals[0].(*sql.RawBytes), *vals[1].(*sql.RawBytes))
}

func TestReplay_VtigerBinlog(t *testing.T) {
	ctx := context.Background()
	s, schema := startVtigerSource(t)
	db := s.DB()
	conn, err := vtiger.Session(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := vtiger.Exec(ctx, conn, replayAccountScript); err != nil {
		t.Fatal(err)
	}
	// Let the account's settle window close before the opportunity.
	if _, err := conn.ExecContext(ctx, "SET timestamp = UNIX_TIMESTAMP() + 60"); err != nil {
		t.Fatal(err)
	}
	potentialStart := binlogPos(t, db)
	if err := vtiger.Exec(ctx, conn, vtiger.CreatePotential); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(s.Dir, "binlog", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("binlog files %v: %v", files, err)
	}
	cfg := writeTemp(t, "rowhook.yaml", fmt.Sprintf(`source:
  dsn: mysql://root@127.0.0.1:%d/
  include: ["%s.*"]
vtiger:
  schema: %s
rules:
  - name: new-account
    table: vtiger_account
    on: [insert]
    event: NewAccount
    webhooks: [erp]
  - name: new-opportunity
    table: vtiger_potential
    on: [insert]
    when: row.amount > 1000
    event: NewOpportunity
    webhooks: [erp]
  - name: opportunity-row
    table: vtiger_potential
    on: [insert]
    event: RowChanged
`, s.Port, schema, schema))

	type line struct {
		ID, Rule, Event, Key string
		Webhooks             []string
		Body                 map[string]any
	}
	parse := func(out string) []line {
		var ls []line
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("output line %q: %v", l, err)
			}
			ls = append(ls, x)
		}
		return ls
	}
	args := append([]string{"replay", "--config", cfg, "--progress", "never"}, files...)
	out, errOut, code := runCommand(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parse(out)
	var names []string
	for _, l := range got {
		names = append(names, l.Rule)
	}
	// Binlog order: the RowChanged event of the potential insert waits
	// behind the NewOpportunity held for its settle window.
	if strings.Join(names, ",") != "new-account,new-opportunity,opportunity-row" {
		t.Fatalf("events %v\n%s", names, out)
	}
	opp := got[1]
	if opp.Event != "NewOpportunity" || opp.Key != schema+".vtiger_potential:3" || opp.Webhooks[0] != "erp" {
		t.Errorf("event %+v", opp)
	}
	// Assembled from the binlog alone: the account's name comes from the
	// stream, the forecast from Vtiger's workflow update in the window.
	for k, want := range map[string]any{"id": 3.0, "related_to_name": "Acme Corp", "forecast_amount": "2500.00000000", "amount": "25000.00000000"} {
		if opp.Body[k] != want {
			t.Errorf("body %s = %v, want %v", k, opp.Body[k], want)
		}
	}
	if !strings.Contains(errOut, "3 events") {
		t.Errorf("stderr summary %q", errOut)
	}

	// --to stops before the opportunity, --from starts at it.
	out, errOut, code = runCommand(t, append([]string{"replay", "--config", cfg, "--progress", "never", "--to", potentialStart}, files...)...)
	if got := parse(out); code != 0 || len(got) != 1 || got[0].Rule != "new-account" {
		t.Errorf("--to: exit %d, %v %s", code, got, errOut)
	}
	out, errOut, code = runCommand(t, append([]string{"replay", "--config", cfg, "--progress", "never", "--from", potentialStart}, files...)...)
	got = parse(out)
	if code != 0 || len(got) != 2 || got[0].Rule != "new-opportunity" {
		t.Fatalf("--from: exit %d, %v %s", code, got, errOut)
	}
	if got[0].Body["related_to_name"] != nil {
		t.Errorf("--from: the account is not in the replayed range, yet related_to_name = %v", got[0].Body["related_to_name"])
	}
	// --progress always draws the bar on stderr (auto: only on a terminal).
	_, errOut, code = runCommand(t, append([]string{"replay", "--config", cfg, "--progress", "always"}, files...)...)
	if code != 0 || !strings.Contains(errOut, "] 100%") || !strings.Contains(errOut, "[###") {
		t.Errorf("--progress always: exit %d, stderr %q", code, errOut)
	}
	// The same binlog gives the same event ids.
	out2, _, _ := runCommand(t, append([]string{"replay", "--config", cfg, "--progress", "never", "--from", potentialStart}, files...)...)
	if out2 != out {
		t.Errorf("replaying twice differs:\n%s\n%s", out, out2)
	}
}

func TestReplay_Usage(t *testing.T) {
	cfg := writeTemp(t, "rowhook.yaml", ruleTestConfig)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--config", cfg}, "name at least one binlog file"},
		{[]string{"replay", "--binlog", "x"}, "--config FILE is required"},
		{[]string{"replay", "--config", cfg, "--binlog", "x", "--from", "abc"}, `--from: "abc" is not a binlog position`},
		{[]string{"replay", "--config", cfg, "--binlog", "x", "--progress", "maybe"}, "--progress must be auto, always or never"},
	} {
		if _, errOut, code := runCommand(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
	if _, errOut, code := runCommand(t, "replay", "--config", cfg, "--binlog", filepath.Join(t.TempDir(), "nope")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}
