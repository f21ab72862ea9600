package dispatch

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rowhook/rowhook/dispatch/send"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestAttemptClass(t *testing.T) {
	for _, tc := range []struct {
		status int
		err    error
		want   string
	}{
		{200, nil, "2xx"},
		{204, nil, "2xx"},
		{200, &send.RejectedError{Err: errors.New("soap:Server fault")}, "rejected"},
		{500, &send.RejectedError{Err: errors.New("soap:Server fault")}, "5xx"},
		{301, &AttemptError{Status: 301}, "3xx"},
		{410, &AttemptError{Status: 410, Gone: true}, "4xx"},
		{429, &AttemptError{Status: 429, Retryable: true}, "4xx"},
		{503, &AttemptError{Status: 503, Retryable: true}, "5xx"},
		{0, &AttemptError{Err: &send.RequestError{Err: errors.New("delivery has no URL")}}, "request"},
		{0, fmt.Errorf("post: %w", context.DeadlineExceeded), "timeout"},
		{0, fmt.Errorf("read: %w", timeoutErr{}), "timeout"},
		{0, errors.New("dial tcp 127.0.0.1:9: connect: connection refused"), "network"},
	} {
		if got := attemptClass(tc.status, tc.err); got != tc.want {
			t.Errorf("attemptClass(%d, %v) = %s, want %s", tc.status, tc.err, got, tc.want)
		}
	}
}
