package dispatch

import (
	"context"
	"net/http"
)

// Optional Encoder methods for transports that act on every attempt, not
// only when the event is stored (SOAP: WS-Security nonces, fault parsing).
// The dispatcher checks for them with type assertions.
type (
	// requestAuthorizer adds per-attempt credentials to the request (HTTP
	// Basic, a WS-Security header with a fresh nonce). It runs after the
	// webhook's own auth, before signing.
	requestAuthorizer interface {
		Authorize(ctx context.Context, req *http.Request) error
	}
	// responseChecker judges a response the transport understands better
	// than its HTTP status (a SOAP Fault in a 500, or in a 200). A non-nil
	// error fails the attempt; when it has a Permanent() bool method, that
	// decides whether the attempt is retried.
	responseChecker interface {
		CheckResponse(status int, header http.Header, body []byte) error
	}
	// secretLister names values (passwords) to redact from the delivery log.
	secretLister interface {
		Secrets() []string
	}
)
