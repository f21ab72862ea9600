package main

import (
	"strings"
	"testing"
)

const ruleTestConfig = `source:
  dsn: mysql://rowhook@127.0.0.1:3306/
rules:
  - name: big-deal
    table: crm.vtiger_potential
    on: [insert]
    when: row.amount > 1000 && row.sales_stage != "Closed Lost"
    event: NewOpportunity
    webhooks: [erp]
  - name: stage-changed
    table: crm.deals
    on: [update]
    when: changedTo("stage", "won")
    event: WonDeal
bodies:
  WonDeal:
    lookup: SELECT name FROM crm.accounts WHERE id = :account_id
    fields:
      deal: row.id
      amount: row.amount
      account: lookup.name
      was: old.stage
`

const ruleTests = `tests:
  - name: a Vtiger opportunity settles into one NewOpportunity
    changes:
      - table: crm.vtiger_crmentity
        op: insert
        at: 2026-01-15T10:00:00Z
        after: {crmid: 3, smcreatorid: 1, smownerid: 1, modifiedby: 1, setype: Potentials, createdtime: "2026-01-15 10:00:00", modifiedtime: "2026-01-15 10:00:00", deleted: 0, label: Acme, source: CRM, description: hi}
      - table: crm.vtiger_potential
        op: insert
        after: {potentialid: 3, potential_no: POT1, potentialname: Acme, amount: 25000.00, sales_stage: Prospecting}
      - table: crm.vtiger_potentialscf
        op: insert
        after: {potentialid: 3, cf_856: x}
    expect:
      - rule: big-deal
        event: NewOpportunity
        id: 0-1-2:0:big-deal
        key: crm.vtiger_potential:3
        webhooks: [erp]
        fields:
          id: 3
          amount: "25000.00"
          custom_fields: {cf_856: x}
          deleted: false
  - name: small deals do not fire
    changes:
      - table: crm.vtiger_potential
        op: insert
        after: {potentialid: 4, potentialname: Tiny, amount: 10.00, sales_stage: Prospecting}
    expect: []
  - name: won deal body with a stubbed lookup
    changes:
      - table: crm.deals
        op: update
        before: {id: 7, amount: 99.50, stage: open, account_id: 2}
        after: {id: 7, amount: 99.50, stage: won, account_id: 2}
    lookups:
      WonDeal: {name: Acme Corp}
    expect:
      - rule: stage-changed
        body: {deal: 7, amount: "99.50", account: Acme Corp, was: open}
`

func TestRuleTest_Pass(t *testing.T) {
	cfg := writeTemp(t, "rowhook.yaml", ruleTestConfig)
	tests := writeTemp(t, "tests.yaml", ruleTests)
	out, errOut, code := runCommand(t, "test", "--config", cfg, "-v", tests)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"PASS " + tests + ": a Vtiger opportunity settles into one NewOpportunity (1 events)", "3 passed, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRuleTest_FailureShowsDiff(t *testing.T) {
	cfg := writeTemp(t, "rowhook.yaml", ruleTestConfig)
	bad := strings.NewReplacer(
		`body: {deal: 7, amount: "99.50", account: Acme Corp, was: open}`, `body: {deal: 7, amount: "99.50", account: Globex, was: open}`,
		"amount: 10.00", "amount: 10000.00",
		"deleted: false", "deleted: true",
	).Replace(ruleTests)
	tests := writeTemp(t, "tests.yaml", bad)
	out, errOut, code := runCommand(t, "test", "--config", cfg, tests)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL " + tests + ":2: a Vtiger opportunity settles into one NewOpportunity (tests[0])",
		"event 1 (rule big-deal): field deleted is false, want true",
		"FAIL " + tests + ":25: small deals do not fire (tests[1])",
		"unexpected event 1: rule big-deal, event NewOpportunity, key crm.vtiger_potential:4",
		"event 1 (rule stage-changed): body differs (- want, + got):",
		`-   "account": "Globex",`,
		`+   "account": "Acme Corp",`,
		"0 passed, 3 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "3 tests failed") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestRuleTest_BadFiles(t *testing.T) {
	cfg := writeTemp(t, "rowhook.yaml", ruleTestConfig)
	tests := writeTemp(t, "tests.yaml", `tests:
  - name: x
    changes:
      - table: crm.deals
        op: upsert
        after: {id: 1}
    expect:
      - rule: no-such-rule
`)
	_, errOut, code := runCommand(t, "test", "--config", cfg, tests)
	if code != 1 || !strings.Contains(errOut, tests+`:4:9: tests[0].changes[0]: op must be insert, update or delete, not "upsert"`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	tests = writeTemp(t, "tests.yaml", `tests:
  - name: x
    changes:
      - table: crm.deals
        op: insert
        after: {id: 1}
    expect:
      - rule: no-such-rule
`)
	out, _, code := runCommand(t, "test", "--config", cfg, tests)
	if code != 1 || !strings.Contains(out, tests+`:8:15: expect[0]: no rule named "no-such-rule" in the config`) {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	badCfg := writeTemp(t, "rowhook.yaml", strings.Replace(ruleTestConfig, `changedTo("stage", "won")`, `changedTo("stage", "won"`, 1))
	_, errOut, code = runCommand(t, "test", "--config", badCfg, tests)
	if code != 1 || !strings.Contains(errOut, badCfg+":13:34: rules[1].when: unexpected token EOF") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if _, errOut, code := runCommand(t, "test", "--config", cfg); code != 2 || !strings.Contains(errOut, "at least one TESTS.yaml") {
		t.Errorf("no test files: exit %d %s", code, errOut)
	}
}

// rowhook test evaluates rules offline: the source's, the webhooks' and
// the writeback's secrets need not be set, while a rule's own ${VAR} must.
func TestRuleTest_NoSourceEnvironment(t *testing.T) {
	const unset = "ROWHOOK_TEST_SURELY_UNSET"
	withSecrets := strings.Replace(ruleTestConfig, "dsn: mysql://rowhook@127.0.0.1:3306/", "dsn: mysql://rowhook:${"+unset+"_PW}@127.0.0.1:3306/", 1) + `
webhooks:
  erp:
    url: https://erp.example.com/hook
    auth: { type: bearer, token: '${` + unset + `_TOKEN}' }
writeback:
  dsn: 'mysql://crm:${file:/nonexistent/` + unset + `}@primary:3306/crm'
`
	cfg := writeTemp(t, "rowhook.yaml", withSecrets)
	tests := writeTemp(t, "tests.yaml", ruleTests)
	out, errOut, code := runCommand(t, "test", "--config", cfg, tests)
	if code != 0 || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("exit %d, want 0 without the source's variables:\n%s%s", code, out, errOut)
	}
	// replay reads the same way (it fails later, on the missing binlog).
	if _, errOut, _ := runCommand(t, "replay", "--config", cfg, "--binlog", "/nonexistent/mysql-bin.000001"); strings.Contains(errOut, unset) {
		t.Errorf("replay needs the source's variables: %s", errOut)
	}
	// check reads everything: it still names the first unset variable.
	if _, errOut, code := runCommand(t, "check", "--offline", "--config", cfg); code != 1 || !strings.Contains(errOut, unset+"_PW") {
		t.Errorf("check --offline: exit %d, want 1 naming %s_PW: %s", code, unset, errOut)
	}
	// A rule's own variable is still required.
	ruleVar := strings.Replace(withSecrets, "when: row.amount > 1000", "when: row.amount > ${"+unset+"_MIN}", 1)
	cfg = writeTemp(t, "rowhook2.yaml", ruleVar)
	if _, errOut, code := runCommand(t, "test", "--config", cfg, tests); code != 1 || !strings.Contains(errOut, "rules[0].when: environment variable "+unset+"_MIN is not set") {
		t.Errorf("a rule's unset variable: exit %d: %s", code, errOut)
	}
}
