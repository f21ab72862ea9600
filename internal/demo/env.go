package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/rowhook/rowhook/internal/mariadb"
)

// ensureMariaDB makes sure the MariaDB server binaries are installed: as root
// with apt-get it installs mariadb-server, otherwise it says what to run.
func ensureMariaDB(ctx context.Context, w io.Writer) error {
	if _, err := mariadb.Binary(); err == nil {
		return nil
	}
	_, aptErr := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || aptErr != nil {
		return fmt.Errorf("the demo starts a private MariaDB and needs its server binaries: install them with 'sudo apt-get install -y mariadb-server' (Debian/Ubuntu) or your system's mariadb-server package, then run it again")
	}
	fmt.Fprintln(w, "demo: mariadbd not found; installing mariadb-server with apt-get (running as root)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "mariadb-server"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %v: %w", args, err)
		}
	}
	if _, err := mariadb.Binary(); err != nil {
		return fmt.Errorf("mariadb-server installed but mariadbd still not found: %w", err)
	}
	return nil
}

// Request is one request the demo receiver got.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	// Signature is "verified", "invalid: …" or "unsigned".
	Signature string
	// ReplyID is the id the receiver answered with.
	ReplyID string
}

// Receiver stands in for the ERP: it records requests, checks their
// Standard Webhooks signature, and answers 201 {"id": "ERP-1001", ...}.
type Receiver struct {
	srv    *http.Server
	ln     net.Listener
	secret string
	mu     sync.Mutex
	reqs   []Request
	got    chan struct{}
	// OnRequest, when set (before the first request), is called with each
	// request (rowhook receiver
	// prints them).
	OnRequest func(Request)
}

// StartReceiver listens on addr; secret checks signatures ("" skips).
func StartReceiver(addr, secret string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	r := &Receiver{ln: ln, secret: secret, got: make(chan struct{}, 100)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	rec := Request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body, Signature: "unsigned"}
	if req.Header.Get("webhook-signature") != "" && r.secret != "" {
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			rec.Signature = "invalid: " + err.Error()
		} else {
			rec.Signature = "verified"
		}
	}
	r.mu.Lock()
	rec.ReplyID = fmt.Sprintf("ERP-%d", 1001+len(r.reqs))
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	if r.OnRequest != nil {
		r.OnRequest(rec)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": rec.ReplyID, "status": "created"})
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func (r *Receiver) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// wait waits until at least n requests arrived.
func (r *Receiver) wait(ctx context.Context, n int) ([]Request, error) {
	for {
		if reqs := r.requests(); len(reqs) >= n {
			return reqs, nil
		}
		select {
		case <-ctx.Done():
			return r.requests(), ctx.Err()
		case <-r.got:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }
