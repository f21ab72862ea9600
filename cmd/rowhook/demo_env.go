package main

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

// receivedRequest is one request the demo receiver got.
type receivedRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	// Signature is "verified", "invalid: …" or "unsigned".
	Signature string
	// ReplyID is the id the receiver answered with.
	ReplyID string
}

// demoReceiver stands in for the ERP: it records requests, checks their
// Standard Webhooks signature, and answers 201 {"id": "ERP-1001", ...}.
type demoReceiver struct {
	srv    *http.Server
	ln     net.Listener
	secret string
	mu     sync.Mutex
	reqs   []receivedRequest
	got    chan struct{}
	// onRequest, when set, is called with each request (rowhook receiver
	// prints them).
	onRequest func(receivedRequest)
}

func startDemoReceiver(addr, secret string) (*demoReceiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	r := &demoReceiver{ln: ln, secret: secret, got: make(chan struct{}, 100)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *demoReceiver) URL() string { return "http://" + r.ln.Addr().String() }

func (r *demoReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	rec := receivedRequest{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body, Signature: "unsigned"}
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
	if r.onRequest != nil {
		r.onRequest(rec)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": rec.ReplyID, "status": "created"})
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func (r *demoReceiver) requests() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedRequest(nil), r.reqs...)
}

// wait waits until at least n requests arrived.
func (r *demoReceiver) wait(ctx context.Context, n int) ([]receivedRequest, error) {
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

func (r *demoReceiver) Close() { r.srv.Close() }
