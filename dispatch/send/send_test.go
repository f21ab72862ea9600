package send

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
