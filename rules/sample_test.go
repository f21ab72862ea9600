package rules

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/vtiger"
)

func getJSON(t *testing.T, url string) (int, any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return resp.StatusCode, v
}

func TestEngine_SampleHandler(t *testing.T) {
	ctx := context.Background()
	schema, db := srv.NewSchema(t)
	if err := vtiger.Load(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	conn, err := vtiger.Session(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{testdata(t, "create_account.sql"), vtiger.CreatePotential, vtiger.CreatePotential} {
		if err := vtiger.Exec(ctx, conn, script); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, amount DECIMAL(10,2), name VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO deals VALUES (1, 10.50, 'a'), (2, 20.00, 'b'), (3, 30.25, 'c')"); err != nil {
		t.Fatal(err)
	}
	// vtiger_users (as in a real install; not in the test schema) names the owner.
	if _, err := db.Exec("CREATE TABLE vtiger_users (id INT PRIMARY KEY, user_name VARCHAR(255), first_name VARCHAR(30), last_name VARCHAR(30))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO vtiger_users VALUES (1, 'admin', 'Ada', 'Admin')"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Rules: []RuleConfig{
			{Name: "new-opportunity", Table: schema + ".vtiger_potential", On: []string{"insert"}, Event: "NewOpportunity"},
			{Name: "deal", Table: schema + ".deals", Event: "Deal"},
			{Name: "deal-row", Table: schema + ".deals", Event: "RowChanged"},
		},
		Bodies: map[string]BodyConfig{"Deal": {
			Lookup: "SELECT COUNT(*) AS n FROM " + schema + ".deals WHERE id <= :id",
			Fields: Fields{{Name: "deal_id", Expr: "row.id"}, {Name: "amount", Expr: "row.amount"}, {Name: "rank", Expr: "lookup.n"}},
		}},
	}
	e := mustEngine(t, cfg, Deps{Source: db})
	ts := httptest.NewServer(e.SampleHandler())
	defer ts.Close()

	code, v := getJSON(t, ts.URL+"/events/NewOpportunity/sample?limit=5")
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, v)
	}
	list := v.([]any)
	if len(list) != 2 {
		t.Fatalf("%d opportunities, want 2 (newest first): %v", len(list), v)
	}
	first := list[0].(map[string]any)
	if first["id"] != 4.0 || first["related_to_name"] != "Acme Corp" || first["forecast_amount"] != "2500.00000000" || first["assigned_user_name"] != "Ada Admin" {
		t.Errorf("first sample: id %v related_to_name %v forecast_amount %v assigned_user_name %v",
			first["id"], first["related_to_name"], first["forecast_amount"], first["assigned_user_name"])
	}
	if cf, _ := first["custom_fields"].(map[string]any); cf == nil || cf["cf_856"] != "" {
		t.Errorf("custom_fields %v", first["custom_fields"])
	}

	code, v = getJSON(t, ts.URL+"/events/Deal/sample?limit=2")
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, v)
	}
	js, _ := json.Marshal(v)
	if want := `[{"amount":"30.25","deal_id":3,"rank":3},{"amount":"20.00","deal_id":2,"rank":2}]`; string(js) != want {
		t.Errorf("Deal samples %s, want %s", js, want)
	}
	code, v = getJSON(t, ts.URL+"/events/RowChanged/sample")
	if code != http.StatusOK || len(v.([]any)) != 3 {
		t.Errorf("RowChanged default limit: status %d, %v", code, v)
	}

	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/events/NoSuch/sample", http.StatusNotFound, "no rule has event: NoSuch"},
		{"/events/Deal/sample?limit=0", http.StatusBadRequest, "limit must be a number from 1 to 100"},
		{"/events/Deal/sample?limit=x", http.StatusBadRequest, "limit must be"},
	} {
		code, v := getJSON(t, ts.URL+tc.path)
		if code != tc.code || !strings.Contains(v.(map[string]any)["error"].(string), tc.msg) {
			t.Errorf("%s: %d %v, want %d %q", tc.path, code, v, tc.code, tc.msg)
		}
	}

	offline := httptest.NewServer(mustEngine(t, cfg, Deps{}).SampleHandler())
	defer offline.Close()
	if code, v := getJSON(t, offline.URL+"/events/Deal/sample"); code != http.StatusServiceUnavailable {
		t.Errorf("offline: %d %v", code, v)
	}
}

func TestNew_ColumnsCheckedAgainstSource(t *testing.T) {
	ctx := context.Background()
	schema, db := srv.NewSchema(t)
	if err := vtiger.Load(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown column", Config{Rules: []RuleConfig{{Name: "r", Table: schema + ".vtiger_potential", When: `row.amout > 1000`, Event: "NewOpportunity"}}},
			`rules[0].when: unknown column "amout" in ` + schema + `.vtiger_potential (did you mean "amount"?)`},
		{"text column compared with a number", Config{Rules: []RuleConfig{{Name: "r", Table: schema + ".vtiger_potential", When: `row.sales_stage > 5`, Event: "NewOpportunity"}}},
			`rules[0].when: sales_stage is a text column (varchar) compared with a number`},
		{"vtiger schema", Config{Vtiger: VtigerConfig{Schema: "nosuch"}, Rules: []RuleConfig{{Name: "r", Table: "vtiger_potential", Event: "NewOpportunity"}}},
			`vtiger.schema: the source has no table nosuch.vtiger_crmentity: is "nosuch" Vtiger's database?`},
		{"unknown table", Config{Rules: []RuleConfig{{Name: "r", Table: schema + ".vtiger_potentials", Event: "RowChanged"}}},
			`rules[0].table: table ` + schema + `.vtiger_potentials does not exist on the source`},
		{"lookup parameter", Config{Rules: []RuleConfig{{Name: "r", Table: schema + ".vtiger_potential", Event: "Deal"}},
			Bodies: map[string]BodyConfig{"Deal": {Lookup: "SELECT 1 AS x FROM dual WHERE :relatedto > 0", Fields: Fields{{Name: "x", Expr: "lookup.x"}}}}},
			`bodies.Deal.lookup: parameter :relatedto is not a column of ` + schema + `.vtiger_potential (did you mean "related_to"?)`},
		{"body field column", Config{Rules: []RuleConfig{{Name: "r", Table: schema + ".vtiger_potential", Event: "Deal"}},
			Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{{Name: "x", Expr: "row.potential_name"}}}}},
			`bodies.Deal.fields.x: unknown column "potential_name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(ctx, tt.cfg, Deps{Source: db})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
	// The same rules are accepted offline (columns unknown).
	if _, err := New(ctx, tests[0].cfg, Deps{}); err != nil {
		t.Errorf("offline: %v", err)
	}
}
