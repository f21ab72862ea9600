package vtiger

import (
	"context"
	"os"
	"testing"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{})) }

// The embedded scripts run on MariaDB exactly as Vtiger's statements did.
func TestScripts_CreateUpdateDelete(t *testing.T) {
	mariadbtest.Need(t)
	ctx := context.Background()
	if err := Load(ctx, srv.DB(), "vtiger"); err != nil {
		t.Fatal(err)
	}
	conn, err := Session(ctx, srv.DB(), "vtiger")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := Exec(ctx, conn, CreatePotential); err != nil {
		t.Fatal(err)
	}
	var id int
	var name, no, stage string
	if err := conn.QueryRowContext(ctx, "SELECT potentialid, potentialname, potential_no, sales_stage FROM vtiger_potential WHERE potentialid = @crmid").Scan(&id, &name, &no, &stage); err != nil {
		t.Fatal(err)
	}
	if id != 2 && id != 3 || name != "Acme - 500 seats" || no != "POT1" || stage != "Prospecting" {
		t.Errorf("created potential: %d %q %q %q", id, name, no, stage)
	}
	if err := Exec(ctx, conn, UpdateDeletePotential); err != nil {
		t.Fatal(err)
	}
	var deleted int
	var cf string
	if err := conn.QueryRowContext(ctx, "SELECT e.deleted, cf.cf_856 FROM vtiger_crmentity e JOIN vtiger_potentialscf cf ON cf.potentialid = e.crmid WHERE e.crmid = @crmid").Scan(&deleted, &cf); err != nil {
		t.Fatal(err)
	}
	if deleted != 1 || cf != "ext-id-98765" {
		t.Errorf("after update/delete: deleted=%d cf_856=%q", deleted, cf)
	}
}
