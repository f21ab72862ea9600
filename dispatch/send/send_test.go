package send

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/rules"
)

// fakeCodec is a Codec whose attempt methods are set by function fields.
type fakeCodec struct {
	Encoder
	authorize func(ctx context.Context, req *http.Request) error
	check     func(status int, header http.Header, body []byte) error
	secrets   []string
}

func (c fakeCodec) Authorize(ctx context.Context, req *http.Request) error {
	return c.authorize(ctx, req)
}

func (c fakeCodec) CheckResponse(status int, header http.Header, body []byte) error {
	return c.check(status, header, body)
}

func (c fakeCodec) Secrets() []string { return c.secrets }

var _ Codec = fakeCodec{}

// TestEndpoint_Send sends through a real server with a codec that acts on
// every attempt: its credentials go out, its verdict comes back as a
// *RejectedError, and its secrets never reach the log fields or error text.
func TestEndpoint_Send(t *testing.T) {
	const password = "pa55-w0rd-soap"
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("X-Soap-Auth")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<Fault>bad login " + password + "</Fault>"))
	}))
	defer srv.Close()
	enc, _ := Builtin("POST", ContentJSON, "")
	codec := fakeCodec{
		Encoder: enc,
		authorize: func(_ context.Context, req *http.Request) error {
			req.Header.Set("X-Soap-Auth", password)
			return nil
		},
		check: func(status int, _ http.Header, body []byte) error {
			return errors.New("fault: " + string(body))
		},
		secrets: []string{password},
	}
	e, err := New(Config{URL: srv.URL + "/deals", Method: "POST", Timeout: 5 * time.Second, MaxResponseBytes: 1 << 20, BodyLimit: -1, UserAgent: "rowhook"}, codec)
	if err != nil {
		t.Fatal(err)
	}
	u, p, err := e.Build(&rules.Event{Body: rules.Body{{Name: "id", Value: int64(7)}}}, "")
	if err != nil || u != srv.URL+"/deals" || string(p.Body) != `{"id":7}` {
		t.Fatalf("Build = %s %q %v", u, p.Body, err)
	}
	res, err := e.Send(context.Background(), Request{ID: "msg_1", Event: "E", Method: "POST", URL: u, ContentType: p.ContentType, Body: p.Body})
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a *RejectedError", err)
	}
	if gotAuth != password {
		t.Errorf("Authorize's header did not go out: %q", gotAuth)
	}
	if res.Status != 500 || !strings.Contains(string(res.Body), password) {
		t.Errorf("the response as received: %d %q", res.Status, res.Body)
	}
	for what, s := range map[string]string{
		"error": err.Error(), "response body": string(res.ResponseBody), "request header": strings.Join(res.RequestHeaders["X-Soap-Auth"], ","),
	} {
		if strings.Contains(s, password) || !strings.Contains(s, Redacted) {
			t.Errorf("%s not redacted: %q", what, s)
		}
	}
}

// TestEndpoint_Send_noResponse: a network failure is neither a
// *RequestError nor a *RejectedError (the dispatcher retries it), and a
// missing URL is a *RequestError.
func TestEndpoint_Send_noResponse(t *testing.T) {
	enc, _ := Builtin("POST", ContentJSON, "")
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	e, err := New(Config{URL: url, Method: "POST", Timeout: 5 * time.Second, MaxResponseBytes: 1 << 20}, Plain(enc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Send(context.Background(), Request{ID: "msg_1", Method: "POST", URL: url})
	var rej *RejectedError
	var reqErr *RequestError
	if err == nil || errors.As(err, &rej) || errors.As(err, &reqErr) {
		t.Errorf("closed server: err = %v", err)
	}
	if _, err := e.Send(context.Background(), Request{ID: "msg_1", Method: "POST"}); !errors.As(err, &reqErr) {
		t.Errorf("no URL: err = %v, want a *RequestError", err)
	}
}

// TestEndpoint_Send_HeadersAndLog: what goes out and what the log keeps,
// over several sends of one endpoint (the second and later reuse its
// parsed URL and pooled signing state): configured headers (any case),
// the codec's, the content type, User-Agent, the Standard Webhooks trio
// with a signature that verifies for each delivery, and the log's copy of
// them with the secrets redacted. The api_key in the query goes out and
// stays out of the logged URL; an empty response is an empty, non-nil
// body.
func TestEndpoint_Send_HeadersAndLog(t *testing.T) {
	type got struct {
		h     http.Header
		query string
	}
	gotc := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotc <- got{r.Header.Clone(), r.URL.RawQuery}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	enc, _ := Builtin("POST", ContentJSON, "")
	e, err := New(Config{URL: srv.URL + "/deals", Method: "POST", Timeout: 5 * time.Second, MaxResponseBytes: 1 << 20, BodyLimit: -1,
		UserAgent: "rowhook/test", Headers: map[string]string{"x-tenant": "acme", "X-Erp-Session": "sess-12345"},
		SecretHeaders: []string{"X-Erp-Session"}, Signing: SigningConfig{Secret: testSecret},
		Auth: AuthConfig{Type: "api_key", Name: "apikey", Value: "s3cr3t-key", In: "query"}}, Plain(enc))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := DecodeSecret(testSecret)
	for i := range 3 {
		id := "msg_" + strconv.Itoa(i)
		body := []byte(`{"id":` + strconv.Itoa(i) + `}`)
		res, err := e.Send(context.Background(), Request{ID: id, Event: "DealWon", Method: "POST", URL: srv.URL + "/deals",
			ContentType: "application/json", Headers: map[string]string{"soapaction": "urn:x"}, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		g := <-gotc
		want := map[string]string{"X-Tenant": "acme", "X-Erp-Session": "sess-12345", "Soapaction": "urn:x",
			"Content-Type": "application/json", "User-Agent": "rowhook/test", "Webhook-Id": id, "X-Rowhook-Event": "DealWon"}
		for k, v := range want {
			if vs := g.h[k]; len(vs) != 1 || vs[0] != v {
				t.Errorf("send %d: header %s = %q, want %q", i, k, vs, v)
			}
		}
		ts, err := strconv.ParseInt(g.h.Get("Webhook-Timestamp"), 10, 64)
		if err != nil {
			t.Fatalf("send %d: webhook-timestamp %q", i, g.h.Get("Webhook-Timestamp"))
		}
		if sig := g.h.Get("Webhook-Signature"); sig != Sign(key, id, time.Unix(ts, 0), body) {
			t.Errorf("send %d: signature %s does not sign this delivery", i, sig)
		}
		if g.query != "apikey=s3cr3t-key" {
			t.Errorf("send %d: query %q", i, g.query)
		}
		if strings.Contains(res.URL, "s3cr3t") || !strings.HasPrefix(res.URL, srv.URL+"/deals?apikey=") {
			t.Errorf("send %d: logged URL %s", i, res.URL)
		}
		for k, vs := range g.h {
			if k == "Accept-Encoding" || k == "Content-Length" {
				continue // the transport's own
			}
			lv := res.RequestHeaders[k]
			switch k {
			case "Webhook-Signature", "X-Erp-Session":
				if len(lv) != 1 || lv[0] != Redacted {
					t.Errorf("send %d: logged %s = %q, want it redacted", i, k, lv)
				}
			default:
				if strings.Join(lv, "\n") != strings.Join(vs, "\n") {
					t.Errorf("send %d: logged %s = %q, sent %q", i, k, lv, vs)
				}
			}
		}
		if len(res.RequestHeaders) != len(want)+2 {
			t.Errorf("send %d: logged headers %v", i, res.RequestHeaders)
		}
		if res.RequestBody != nil {
			t.Errorf("send %d: request body logged although redaction left it alone: %q", i, res.RequestBody)
		}
		if res.Status != 204 || res.Body == nil || len(res.Body) != 0 || res.ResponseBody == nil || len(res.ResponseBody) != 0 {
			t.Errorf("send %d: response %d %#v / logged %#v, want an empty non-nil body", i, res.Status, res.Body, res.ResponseBody)
		}
	}
}
