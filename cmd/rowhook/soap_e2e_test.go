package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

const dealsWSDL = `<?xml version="1.0" encoding="UTF-8"?>
<definitions name="Deals" targetNamespace="urn:test:deals"
    xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:test:deals">
  <types>
    <xsd:schema targetNamespace="urn:test:deals" elementFormDefault="qualified">
      <xsd:element name="CreateDeal"><xsd:complexType><xsd:sequence>
        <xsd:element name="name" type="xsd:string"/>
        <xsd:element name="amount" type="xsd:decimal"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="CreateDealResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="dealId" type="xsd:long"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </types>
  <message name="CreateDealIn"><part name="parameters" element="tns:CreateDeal"/></message>
  <message name="CreateDealOut"><part name="parameters" element="tns:CreateDealResponse"/></message>
  <portType name="DealsPort">
    <operation name="CreateDeal"><input message="tns:CreateDealIn"/><output message="tns:CreateDealOut"/></operation>
  </portType>
  <binding name="DealsBinding" type="tns:DealsPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="CreateDeal">
      <soap:operation soapAction="urn:test:deals:CreateDeal"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="DealsService">
    <port name="DealsPort" binding="tns:DealsBinding"><soap:address location="%s/soap"/></port>
  </service>
</definitions>`

// soapERP is a real SOAP service: it serves its WSDL and answers CreateDeal,
// with a Client fault for non-positive amounts.
type soapERP struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string // request envelopes
}

var (
	reName   = regexp.MustCompile(`<(?:\w+:)?name>([^<]*)</`)
	reAmount = regexp.MustCompile(`<(?:\w+:)?amount>([^<]*)</`)
)

func newSOAPERP(t *testing.T) *soapERP {
	e := &soapERP{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/wsdl" {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, dealsWSDL, e.URL)
			return
		}
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.calls = append(e.calls, string(body))
		n := len(e.calls)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		user, pass, _ := r.BasicAuth()
		amount := reAmount.FindStringSubmatch(string(body))
		name := reName.FindStringSubmatch(string(body))
		switch {
		case r.Header.Get("SOAPAction") != `"urn:test:deals:CreateDeal"` || user != "crm" || pass != "soap-pw-s3cret" || name == nil || amount == nil:
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>bad request shape</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
		case strings.HasPrefix(amount[1], "-") || strings.Trim(amount[1], "0.") == "":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Amount must be positive</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
		default:
			fmt.Fprintf(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><CreateDealResponse xmlns="urn:test:deals"><dealId>%d</dealId></CreateDealResponse></soap:Body></soap:Envelope>`, 9000000000+n)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *soapERP) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// Insert a row → SOAP call with mapped parameters → a value from the parsed
// SOAP response written back into the row; a Client fault is a permanent
// failure whose code and string are in the delivery log.
func TestRun_SOAPCallWithWriteback(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(12,2), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	erp := newSOAPERP(t)
	t.Setenv("ROWHOOK_TEST_SOAP_PW", "soap-pw-s3cret")
	var start string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:
  - name: new-deal
    table: %s.deals
    on: [insert]
    event: RowChanged
    webhooks: [erp]
    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_ref: 'string(response.soap.dealId)' }
webhooks:
  erp:
    url: %s/soap
    content_type: soap
    retry: { max_attempts: 3, initial_interval: 100ms, max_interval: 500ms }
    soap:
      wsdl: %s/wsdl
      operation: CreateDeal
      params:
        name: row.name
        amount: row.amount
      auth:
        basic: { username: crm, password: '${ROWHOOK_TEST_SOAP_PW}' }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
`, s.URL(), schema, start, schema, schema, erp.URL, erp.URL, s.Port, schema))
	p, logs := startTestPipeline(t, cfgPath)

	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme & Sons <500 seats>', 25000.50)"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "9000000001")
	env := erp.requests()[0]
	for _, want := range []string{"CreateDeal", `urn:test:deals`, "Acme &amp; Sons &lt;500 seats&gt;", ">25000.50<"} {
		if !strings.Contains(env, want) {
			t.Errorf("envelope lacks %q:\n%s", want, env)
		}
	}

	// A Client fault: permanent, no retries, code and string logged.
	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (2, 'Zero', 0)"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for {
		got = httpGet(t, "http://"+p.Addr()+"/deliveries")
		if strings.Contains(got, "Amount must be positive") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fault never reached the delivery log:\n%s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var list struct {
		Deliveries []struct {
			Status    string `json:"status"`
			LastError string `json:"last_error"`
			Attempts  int    `json:"attempts"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(got), &list); err != nil {
		t.Fatalf("GET /deliveries: %v\n%s", err, got)
	}
	var faulted int
	for _, d := range list.Deliveries {
		if strings.Contains(d.LastError, "Amount must be positive") {
			faulted++
			if d.Attempts != 1 || (d.Status != "dead" && d.Status != "failed") {
				t.Errorf("client fault: status %s after %d attempts, want a permanent failure after 1", d.Status, d.Attempts)
			}
			if !strings.Contains(d.LastError, "Client") {
				t.Errorf("fault code missing from %q", d.LastError)
			}
		}
	}
	if faulted != 1 {
		t.Errorf("%d deliveries carry the fault:\n%s", faulted, got)
	}
	// The admin API's look-ups, as a UI building a mapping uses them.
	ops := httpGet(t, "http://"+p.Addr()+"/soap/lookup?wsdl="+url.QueryEscape(erp.URL+"/wsdl"))
	if !strings.Contains(ops, `"soap_action": "urn:test:deals:CreateDeal"`) {
		t.Errorf("GET /soap/lookup: operations lack CreateDeal:\n%s", ops)
	}
	params := httpGet(t, "http://"+p.Addr()+"/soap/lookup?operation=CreateDeal&wsdl="+url.QueryEscape(erp.URL+"/wsdl"))
	for _, want := range []string{`"name": "name"`, `"name": "amount"`, "decimal"} {
		if !strings.Contains(params, want) {
			t.Errorf("GET /soap/lookup?operation=CreateDeal lacks %s:\n%s", want, params)
		}
	}
	if strings.Contains(logs.String(), "soap-pw-s3cret") || strings.Contains(got, "soap-pw-s3cret") {
		t.Errorf("the SOAP password reached the logs or the delivery log")
	}
}
