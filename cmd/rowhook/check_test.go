package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/vtiger"
)

// runCommand runs `rowhook args...` in-process and returns its output and
// exit status.
func runCommand(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	code = exitCode(err, &errOut)
	return out.String(), errOut.String(), code
}

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startVtigerSource starts a private MariaDB with the Vtiger schema loaded.
func startVtigerSource(t *testing.T) (*mariadbtest.Server, string) {
	t.Helper()
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if err := vtiger.Load(context.Background(), db, schema); err != nil {
		t.Fatal(err)
	}
	return s, schema
}

const checkConfig = `source:
  dsn: mysql://rowhook:s3cret-pw@127.0.0.1:1/
webhooks:
  erp:
    url: https://erp.example/hook
rules:
  - name: big-deal
    table: crm.vtiger_potential
    on: [insert]
    when: 'row.amount > 1000 && isEmpty(row.nextstep)'
    event: NewOpportunity
    webhooks: [erp]
  - name: deals
    table: crm.deals
    event: Deal
bodies:
  Deal:
    fields:
      id: row.id
      big: row.amount > 1000
`

func TestCheck_Valid(t *testing.T) {
	path := writeTemp(t, "rowhook.yaml", checkConfig)
	out, errOut, code := runCommand(t, "check", "--config", path, "--offline")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if want := path + ": ok: 2 rules, 1 YAML body function; offline (--offline)"; !strings.HasPrefix(out, want) {
		t.Errorf("output %q, want prefix %q", out, want)
	}
	// Unreachable source: rowhook run would refuse to start, so check
	// fails, names source.dsn, and never prints the password.
	out, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "source.dsn") || !strings.Contains(errOut, "127.0.0.1:1") || strings.Contains(out+errOut, "s3cret-pw") {
		t.Errorf("exit %d, output %q %q", code, out, errOut)
	}
}

func TestCheck_Errors(t *testing.T) {
	bad := strings.NewReplacer(
		"isEmpty(row.nextstep)", "isEmpti(row.nextstep)",
		"on: [insert]", "on: [insert, upsert]",
		"webhooks: [erp]", "webhooks: [erp, crm]",
		"event: Deal", "event: Dael",
	).Replace(checkConfig)
	path := writeTemp(t, "rowhook.yaml", bad)
	out, errOut, code := runCommand(t, "check", "--config", path, "--offline")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		path + `:9:18: rules[0].on[1]: unknown operation "upsert" (use insert, update or delete)`,
		path + `:10:33: rules[0].when: unknown name isEmpti (did you mean "isEmpty"?)`,
		path + `:12:21: rules[0].webhooks[1]: unknown webhook "crm"; configured webhooks: erp`,
		path + `:15:12: rules[1].event: unknown body function "Dael" (did you mean "Deal"?)`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheck_AgainstSource(t *testing.T) {
	s, schema := startVtigerSource(t)
	cfg := strings.NewReplacer(
		"127.0.0.1:1", "127.0.0.1:"+strconv.Itoa(s.Port),
		"rowhook:s3cret-pw", "root",
		"crm.", schema+".",
	).Replace(checkConfig)
	// Deals do not exist on the source; the Vtiger rule is fine.
	path := writeTemp(t, "rowhook.yaml", cfg)
	_, errOut, code := runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, path+`:14:12: rules[1].table: table `+schema+`.deals does not exist on the source`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	cfg = strings.NewReplacer("row.amount > 1000 &&", "row.amout > 1000 &&", "table: "+schema+".deals", "table: "+schema+".vtiger_account",
		"id: row.id", "id: row.accountid").Replace(cfg)
	cfg += "    lookup: SELECT accountname FROM " + schema + ".vtiger_acount WHERE accountid = :accountid\n"
	cfg = strings.Replace(cfg, "      big: row.amount > 1000\n", "      big: row.annualrevenue > 1000\n      name: lookup.accountname\n", 1)
	path = writeTemp(t, "rowhook.yaml", cfg)
	_, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, path+`:10:16: rules[0].when: unknown column "amout" in `+schema+`.vtiger_potential (did you mean "amount"?)`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	// With the column fixed, the lookup query is refused by the source.
	path = writeTemp(t, "rowhook.yaml", strings.Replace(cfg, "row.amout", "row.amount", 1))
	_, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "bodies.Deal.lookup: the source refuses the query") || !strings.Contains(errOut, "vtiger_acount") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	path = writeTemp(t, "rowhook.yaml", strings.NewReplacer("row.amout", "row.amount", "vtiger_acount", "vtiger_account").Replace(cfg))
	out, errOut, code := runCommand(t, "check", "--config", path)
	if code != 0 || !strings.Contains(out, "columns checked against the source") {
		t.Errorf("exit %d: %s%s", code, out, errOut)
	}
}

func TestCheck_UsageAndList(t *testing.T) {
	if _, errOut, code := runCommand(t, "check"); code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("no --config: exit %d, %s", code, errOut)
	}
	out, _, code := runCommand(t, "check", "--list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"NewOpportunity", "OpportunityUpdated", "NewContact", "NewLead", "NewAccount", "NewTicket", "RowChanged", "changedTo", "lessThanDaysAgo"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list lacks %s:\n%s", want, out)
		}
	}
}

// rowhook check also checks what the other packages own: writeback columns
// against the primary and SOAP mappings against their WSDL.
func TestCheck_WritebackAndSOAP(t *testing.T) {
	s, schema := startVtigerSource(t)
	wsdl := writeTemp(t, "deals.wsdl", fmt.Sprintf(dealsWSDL, "http://127.0.0.1:1"))
	cfg := fmt.Sprintf(`source:
  dsn: mysql://root@127.0.0.1:%d/
webhooks:
  erp:
    url: http://127.0.0.1:1/soap
    content_type: soap
    soap:
      wsdl: %s
      operation: CreateDeal
      params:
        name: row.potentialname
        amount: row.amount
rules:
  - name: new-opportunity
    table: %s.vtiger_potential
    on: [insert]
    event: NewOpportunity
    webhooks: [erp]
    writeback:
      table: %s.vtiger_potentialscf
      key: { potentialid: 'row.potentialid' }
      set: { cf_856: 'string(response.soap.dealId)' }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
  mode: marker
  create_marker: false
`, s.Port, wsdl, schema, schema, s.Port, schema)

	bad := strings.NewReplacer("cf_856:", "cf_865:", "operation: CreateDeal", "operation: CreateDeel").Replace(cfg)
	path := writeTemp(t, "rowhook.yaml", bad)
	// Offline: the blocks are valid on their own, nothing is looked up.
	out, errOut, code := runCommand(t, "check", "--config", path, "--offline")
	if code != 0 || !strings.Contains(out, "writeback columns not checked") || !strings.Contains(out, "SOAP mappings not checked") {
		t.Fatalf("offline: exit %d: %s%s", code, out, errOut)
	}
	// The start-up inspection (writeback included) comes first, as in
	// rowhook run; then the SOAP mappings.
	_, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "rules[0].writeback.set.cf_865") || !strings.Contains(errOut, "cf_856") {
		t.Errorf("unknown writeback column: exit %d, stderr:\n%s", code, errOut)
	}
	path = writeTemp(t, "rowhook.yaml", strings.NewReplacer("cf_865:", "cf_856:", "create_marker: false", "create_marker: true").Replace(bad))
	_, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, path+":9:18: webhooks.erp.soap.operation:") || !strings.Contains(errOut, "CreateDeel") {
		t.Errorf("unknown SOAP operation: exit %d, stderr:\n%s", code, errOut)
	}
	// Without create_marker, the missing marker table is reported with
	// the statements to run; rowhook check creates nothing.
	path = writeTemp(t, "rowhook.yaml", cfg)
	_, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "CREATE TABLE") {
		t.Errorf("missing marker table: exit %d, stderr:\n%s", code, errOut)
	}
	path = writeTemp(t, "rowhook.yaml", strings.Replace(cfg, "  mode: marker\n  create_marker: false\n", "", 1))
	out, errOut, code = runCommand(t, "check", "--config", path)
	if code != 0 || !strings.Contains(out, "writeback columns checked against the primary") || !strings.Contains(out, "SOAP mappings checked against their WSDLs") {
		t.Errorf("valid: exit %d: %s%s", code, out, errOut)
	}
	// An unreachable primary: rowhook run refuses to start, so check
	// fails too, naming the primary and never the password.
	path = writeTemp(t, "rowhook.yaml", strings.Replace(cfg, fmt.Sprintf("dsn: mysql://root@127.0.0.1:%d/%s", s.Port, schema), "dsn: mysql://root:pw-s3cret@127.0.0.1:1/crm", 1))
	out, errOut, code = runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "connect to primary 127.0.0.1:1") || strings.Contains(out+errOut, "pw-s3cret") {
		t.Errorf("unreachable primary: exit %d: %s%s", code, out, errOut)
	}
}

// `rowhook check` warns on stderr, with the place in the file, when the
// listener is off loopback and admin.token is empty; the config stays valid.
func TestCheck_AdminTokenWarning(t *testing.T) {
	for _, tc := range []struct {
		name, http, admin string
		warn              bool
	}{
		{"all interfaces, no token", "http:\n  listen: 0.0.0.0:9788\n", "", true},
		{"empty host, no token", "http:\n  listen: ':9788'\n", "", true},
		{"all interfaces, token", "http:\n  listen: 0.0.0.0:9788\n", "admin:\n  token: t0k\n", false},
		{"loopback", "http:\n  listen: 127.0.0.1:9788\n", "", false},
		{"default listener", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "rowhook.yaml", checkConfig+tc.http+tc.admin)
			out, errOut, code := runCommand(t, "check", "--config", path, "--offline")
			if code != 0 || !strings.Contains(out, ": ok:") {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			line := strings.Count(checkConfig, "\n") + 2
			want := fmt.Sprintf("warning: %s:%d:", path, line)
			got := strings.Contains(errOut, want) && strings.Contains(errOut, "http.listen") && strings.Contains(errOut, "set admin.token")
			if got != tc.warn {
				t.Errorf("stderr %q; want a warning %v (at %s naming http.listen and admin.token)", errOut, tc.warn, want)
			}
			if !tc.warn && errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
		})
	}
}
