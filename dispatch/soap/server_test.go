package soap

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
)

// soapServer is a real SOAP server for tests: it serves the WSDLs in
// testdata/wsdl (with {{BASE}} replaced by its own URL) and answers the
// operations they describe.
type soapServer struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests []recorded
	// wsdlDown makes WSDL requests fail with 503.
	wsdlDown bool
	// wsdlFetches counts WSDL and XSD requests.
	wsdlFetches int
}

type recorded struct {
	Path   string
	Header http.Header
	Body   string
}

const (
	testWSUser = "crm"
	testWSPass = "s3cret-ws-pass"
	testUser   = "rowhook"
	testPass   = "s3cret-basic-pass"
)

func newSOAPServer(t *testing.T) *soapServer {
	t.Helper()
	s := &soapServer{t: t}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *soapServer) last() recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		s.t.Fatal("no SOAP request recorded")
	}
	return s.requests[len(s.requests)-1]
}

func (s *soapServer) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/wsdl/") {
		s.mu.Lock()
		down := s.wsdlDown
		s.wsdlFetches++
		s.mu.Unlock()
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/wsdl/secure/") {
			if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPass {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/wsdl/"), "secure/")
		b, err := os.ReadFile(filepath.Join("testdata", "wsdl", filepath.FromSlash(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write([]byte(strings.ReplaceAll(string(b), "{{BASE}}", s.URL)))
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, recorded{r.URL.Path, r.Header.Clone(), string(body)})
	s.mu.Unlock()
	v12 := strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml")
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		s.fault(w, v12, true, "not XML", "")
		return
	}
	env := doc.Root()
	wantNS := NSSOAP11
	if v12 {
		wantNS = NSSOAP12
	}
	if space(env) != wantNS {
		s.fault(w, v12, true, "envelope namespace "+space(env)+" does not match the content type", "")
		return
	}
	var op *etree.Element
	var header *etree.Element
	for _, c := range env.ChildElements() {
		if c.Tag == "Body" && len(c.ChildElements()) > 0 {
			op = c.ChildElements()[0]
		}
		if c.Tag == "Header" {
			header = c
		}
	}
	if op == nil {
		s.fault(w, v12, true, "empty Body", "")
		return
	}
	switch r.URL.Path {
	case "/calculator.asmx":
		s.calculator(w, r, v12, op)
	case "/orders":
		s.orders(w, v12, op, header)
	case "/quotes":
		s.quotes(w, r, op)
	default:
		http.NotFound(w, r)
	}
}

func text(e *etree.Element, path string) string {
	if c := e.FindElement(path); c != nil {
		return c.Text()
	}
	return ""
}

func (s *soapServer) reply(w http.ResponseWriter, v12 bool, status int, body string) {
	ns, ct := NSSOAP11, "text/xml; charset=utf-8"
	if v12 {
		ns, ct = NSSOAP12, "application/soap+xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="%s" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body>%s</soap:Body></soap:Envelope>`, ns, body)
}

func (s *soapServer) fault(w http.ResponseWriter, v12, client bool, msg, detail string) {
	if v12 {
		code := "soap:Receiver"
		if client {
			code = "soap:Sender"
		}
		s.reply(w, true, http.StatusInternalServerError, `<soap:Fault><soap:Code><soap:Value>`+code+`</soap:Value><soap:Subcode><soap:Value xmlns:app="urn:app">app:Rejected</soap:Value></soap:Subcode></soap:Code><soap:Reason><soap:Text xml:lang="de">Abgelehnt</soap:Text><soap:Text xml:lang="en">`+msg+`</soap:Text></soap:Reason>`+detail+`</soap:Fault>`)
		return
	}
	code := "soap:Server"
	if client {
		code = "soap:Client"
	}
	s.reply(w, false, http.StatusInternalServerError, `<soap:Fault><faultcode>`+code+`</faultcode><faultstring>`+msg+`</faultstring>`+detail+`</soap:Fault>`)
}

func (s *soapServer) calculator(w http.ResponseWriter, r *http.Request, v12 bool, op *etree.Element) {
	if space(op) != "http://tempuri.org/" {
		s.fault(w, v12, true, "unknown namespace "+space(op), "")
		return
	}
	action := r.Header.Get("SOAPAction")
	if v12 {
		action = r.Header.Get("Content-Type")
	}
	if !strings.Contains(action, "http://tempuri.org/"+op.Tag) {
		s.fault(w, v12, true, "SOAP action "+action+" does not match "+op.Tag, "")
		return
	}
	switch op.Tag {
	case "Add":
		a, b := text(op, "intA"), text(op, "intB")
		var x, y int
		if _, err := fmt.Sscan(a, &x); err != nil {
			s.fault(w, v12, true, "intA is not an integer", "")
			return
		}
		if _, err := fmt.Sscan(b, &y); err != nil {
			s.fault(w, v12, true, "intB is not an integer", "")
			return
		}
		s.reply(w, v12, 200, fmt.Sprintf(`<AddResponse xmlns="http://tempuri.org/"><AddResult>%d</AddResult></AddResponse>`, x+y))
	case "Divide":
		var x, y float64
		fmt.Sscan(text(op, "dividend"), &x)
		fmt.Sscan(text(op, "divisor"), &y)
		if text(op, "note") == "crash" {
			s.fault(w, v12, false, "database unavailable", "<detail><retryAfter>30</retryAfter></detail>")
			return
		}
		if y == 0 {
			s.fault(w, v12, true, "Division by zero", `<detail><e:error xmlns:e="urn:err"><e:field>divisor</e:field></e:error></detail>`)
			return
		}
		s.reply(w, v12, 200, fmt.Sprintf(`<DivideResponse xmlns="http://tempuri.org/"><DivideResult>%g</DivideResult><Remark xsi:nil="true"/></DivideResponse>`, x/y))
	default:
		s.fault(w, v12, true, "unknown operation "+op.Tag, "")
	}
}

// orders checks the WS-Security digest and echoes parts of the order.
func (s *soapServer) orders(w http.ResponseWriter, v12 bool, op, header *etree.Element) {
	if !v12 {
		s.fault(w, v12, true, "SOAP 1.2 only", "")
		return
	}
	if header == nil || header.FindElement("Security/UsernameToken") == nil {
		s.fault(w, true, true, "missing WS-Security header", "")
		return
	}
	tok := header.FindElement("Security/UsernameToken")
	nonce, _ := base64.StdEncoding.DecodeString(text(tok, "Nonce"))
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(text(tok, "Created")))
	h.Write([]byte(testWSPass))
	if text(tok, "Username") != testWSUser || text(tok, "Password") != base64.StdEncoding.EncodeToString(h.Sum(nil)) {
		s.fault(w, true, true, "authentication failed", "")
		return
	}
	if op.Tag != "CreateOrder" || space(op) != "urn:example:orders" {
		s.fault(w, true, true, "unknown operation", "")
		return
	}
	order := op.SelectElement("order")
	if order == nil || space(order) != "urn:example:orders" {
		s.fault(w, true, true, "order missing or unqualified", "")
		return
	}
	warnings := ""
	for _, l := range order.SelectElements("line") {
		if text(l, "quantity") == "0" {
			warnings += "<warning>line " + text(l, "sku") + " has no quantity</warning>"
		}
	}
	s.reply(w, true, 200, `<o:CreateOrderResponse xmlns:o="urn:example:orders"><o:orderId>9000000001</o:orderId><o:status>NEW</o:status><o:accepted>true</o:accepted>`+warnings+`<o:total>`+text(order, "amount")+`</o:total></o:CreateOrderResponse>`)
}

func (s *soapServer) quotes(w http.ResponseWriter, r *http.Request, op *etree.Element) {
	if space(op) != "urn:example:quotes" {
		s.fault(w, false, true, "unknown namespace", "")
		return
	}
	switch op.Tag {
	case "getQuote":
		// rpc/literal: parts are unqualified children of the wrapper.
		sym := op.SelectElement("symbol")
		if sym == nil || space(sym) != "" {
			s.fault(w, false, true, "symbol missing or qualified", "")
			return
		}
		s.reply(w, false, 200, `<ns:getQuoteResponse xmlns:ns="urn:example:quotes"><quote><symbol>`+sym.Text()+`</symbol><price>101.25</price><currency>EUR</currency></quote></ns:getQuoteResponse>`)
	case "tag":
		n := len(op.FindElements("tags/item"))
		s.reply(w, false, 200, fmt.Sprintf(`<ns1:tagResponse soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" xmlns:ns1="urn:example:quotes"><count xsi:type="xsd:int" xmlns:xsd="http://www.w3.org/2001/XMLSchema">%d</count><quote href="#id0"/></ns1:tagResponse><multiRef id="id0" soapenc:root="0" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"><symbol>%s</symbol><price>7.5</price><currency>USD</currency></multiRef>`, n, text(op, "symbol")))
	default:
		s.fault(w, false, true, "unknown operation", "")
	}
}
