package send

import (
	"testing"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
)

func testEvent() *rules.Event {
	return &rules.Event{
		ID: "0-1-42:0:new-deal", Rule: "new-deal", Name: "NewOpportunity", Key: "crm.vtiger_potential:7",
		Body: rules.Body{
			{Name: "id", Value: int64(7)},
			{Name: "name", Value: "Tom & Jerry <Ltd>"},
			{Name: "amount", Value: cdc.Decimal("1250.50")},
			{Name: "closed", Value: nil},
			{Name: "contact", Value: rules.Body{{Name: "email", Value: "a@b.c"}}},
			{Name: "tags", Value: []any{"x", int64(2)}},
		},
		Change: &cdc.Change{Schema: "crm", Table: "vtiger_potential", Op: cdc.OpInsert,
			After: cdc.Row{"potentialid": int64(7), "potentialname": "a/b c"}, PK: cdc.Row{"potentialid": int64(7)}},
	}
}

func TestBuiltin_Encode(t *testing.T) {
	tests := []struct {
		name, method, ct string
		wantCT, wantBody string
		wantQuery        string
	}{
		{"json", "POST", ContentJSON, "application/json",
			`{"id":7,"name":"Tom \u0026 Jerry \u003cLtd\u003e","amount":"1250.50","closed":null,"contact":{"email":"a@b.c"},"tags":["x",2]}`, ""},
		{"form", "POST", ContentForm, "application/x-www-form-urlencoded",
			`id=7&name=Tom+%26+Jerry+%3CLtd%3E&amount=1250.50&closed=&contact=%7B%22email%22%3A%22a%40b.c%22%7D&tags=%5B%22x%22%2C2%5D`, ""},
		{"xml", "PUT", ContentXML, "application/xml; charset=utf-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<deal><id>7</id><name>Tom &amp; Jerry &lt;Ltd&gt;</name><amount>1250.50</amount><closed></closed><contact><email>a@b.c</email></contact><tags><item>x</item><item>2</item></tags></deal>`, ""},
		{"text", "POST", ContentText, "text/plain; charset=utf-8",
			"id: 7\nname: Tom & Jerry <Ltd>\namount: 1250.50\nclosed: \ncontact: {\"email\":\"a@b.c\"}\ntags: [\"x\",2]\n", ""},
		{"get", "GET", ContentJSON, "", "", "id=7&name=Tom+%26+Jerry+%3CLtd%3E&amount=1250.50&closed=&contact=%7B%22email%22%3A%22a%40b.c%22%7D&tags=%5B%22x%22%2C2%5D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, ok := Builtin(tt.method, tt.ct, "deal")
			if !ok {
				t.Fatal("no encoder")
			}
			p, err := enc.Encode(testEvent())
			if err != nil {
				t.Fatal(err)
			}
			if p.ContentType != tt.wantCT || string(p.Body) != tt.wantBody {
				t.Errorf("got %q\n%s\nwant %q\n%s", p.ContentType, p.Body, tt.wantCT, tt.wantBody)
			}
			if tt.wantQuery != "" {
				u, _ := appendQuery("https://x/?a=1", testEvent().Body, p.Query)
				if u != "https://x/?a=1&"+tt.wantQuery {
					t.Errorf("url = %s", u)
				}
			}
		})
	}
}
