package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/rowhook/rowhook/internal/demo"
)

func init() {
	register(command{name: "receiver", summary: "a local webhook receiver for trying rowhook out: prints requests, answers 201 {\"id\": ...}", example: []string{"rowhook receiver --listen 127.0.0.1:8080 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, run: runReceiver})
}

func runReceiver(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(io.err)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	secret := fs.String("secret", "", "Standard Webhooks secret (whsec_...) to verify signatures with")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook receiver [--listen ADDR] [--secret whsec_...]")
		fmt.Fprintln(io.err, "Prints one JSON line per request received (method, path, headers, body, signature check) and")
		fmt.Fprintln(io.err, `answers 201 {"id": "ERP-1001", "status": "created"} (the id counts up).`)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	var mu sync.Mutex
	enc := json.NewEncoder(io.out)
	r, err := demo.StartReceiver(*listen, *secret)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	r.OnRequest = func(rec demo.Request) {
		mu.Lock()
		defer mu.Unlock()
		var body any = string(rec.Body)
		if json.Valid(rec.Body) {
			body = json.RawMessage(rec.Body)
		}
		enc.Encode(map[string]any{
			"time": time.Now().UTC().Format(time.RFC3339Nano), "method": rec.Method, "path": rec.Path,
			"headers": rec.Header, "body": body, "signature": rec.Signature, "reply_id": rec.ReplyID,
		})
	}
	fmt.Fprintf(io.err, "receiver: listening on %s\n", r.URL())
	<-ctx.Done()
	r.Close()
	return nil
}
