package dispatch

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// DeliveryView is the JSON shape of a delivery in the admin API and
// `rowhook deliveries --json`.
type DeliveryView struct {
	ID             string        `json:"id"`
	Status         Status        `json:"status"`
	Webhook        string        `json:"webhook"`
	Subscription   string        `json:"subscription,omitempty"`
	Event          string        `json:"event"`
	EventID        string        `json:"event_id"`
	Rule           string        `json:"rule"`
	Key            string        `json:"record_key"`
	Method         string        `json:"method"`
	URL            string        `json:"url"`
	ContentType    string        `json:"content_type,omitempty"`
	Body           string        `json:"body,omitempty"`
	BodyBase64     string        `json:"body_base64,omitempty"`
	Attempts       int           `json:"attempts"`
	LastStatus     int           `json:"last_status,omitempty"`
	LastError      string        `json:"last_error,omitempty"`
	Redelivered    int           `json:"redelivered,omitempty"`
	Writeback      string        `json:"writeback,omitempty"`
	WritebackError string        `json:"writeback_error,omitempty"`
	EventTime      time.Time     `json:"event_time"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	NextAt         *time.Time    `json:"next_at,omitempty"`
	Log            []AttemptView `json:"log,omitempty"`
}

// AttemptView is the JSON shape of a delivery log entry.
type AttemptView struct {
	N          int       `json:"n,omitempty"`
	Kind       string    `json:"kind"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms,omitempty"`
	Request    *struct {
		Method     string              `json:"method"`
		URL        string              `json:"url"`
		Headers    map[string][]string `json:"headers,omitempty"`
		Body       string              `json:"body,omitempty"`
		BodyBase64 string              `json:"body_base64,omitempty"`
	} `json:"request,omitempty"`
	Response *struct {
		Status     int                 `json:"status"`
		Headers    map[string][]string `json:"headers,omitempty"`
		Body       string              `json:"body,omitempty"`
		BodyBase64 string              `json:"body_base64,omitempty"`
	} `json:"response,omitempty"`
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"`
}

func textOrBase64(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

// ViewDelivery renders d (and its log, when given) for JSON output. The
// request body limit of the delivery log applies to the stored body too.
func ViewDelivery(d Delivery, log []Attempt, bodyLimit int) DeliveryView {
	v := DeliveryView{
		ID: d.ID, Status: d.Status, Webhook: d.Webhook, Subscription: d.Subscription, Event: d.Event,
		EventID: d.EventID, Rule: d.Rule, Key: d.Key, Method: d.Method, URL: d.URL, ContentType: d.ContentType,
		Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, Redelivered: d.Redelivered,
		Writeback: d.Writeback, WritebackError: d.WritebackError, EventTime: d.EventTime, CreatedAt: d.CreatedAt,
		UpdatedAt: d.UpdatedAt,
	}
	if bodyLimit <= 0 {
		bodyLimit = DefaultBodyLimit
	}
	v.Body, v.BodyBase64 = textOrBase64(d.Body[:min(len(d.Body), bodyLimit)])
	if d.Status == StatusPending {
		t := d.NextAt
		v.NextAt = &t
	}
	for _, a := range log {
		if a.Kind == KindAttempt && a.RequestBody == nil {
			a.RequestBody = d.Body[:min(len(d.Body), bodyLimit)]
		}
		v.Log = append(v.Log, ViewAttempt(a))
	}
	return v
}

// ViewAttempt renders one delivery log entry.
func ViewAttempt(a Attempt) AttemptView {
	v := AttemptView{N: a.N, Kind: a.Kind, At: a.At, Error: a.Error, Note: a.Note}
	if a.Duration > 0 {
		v.DurationMS = float64(a.Duration.Microseconds()) / 1000
	}
	if a.Kind == KindAttempt {
		v.Request = &struct {
			Method     string              `json:"method"`
			URL        string              `json:"url"`
			Headers    map[string][]string `json:"headers,omitempty"`
			Body       string              `json:"body,omitempty"`
			BodyBase64 string              `json:"body_base64,omitempty"`
		}{Method: a.Method, URL: a.URL, Headers: a.RequestHeaders}
		v.Request.Body, v.Request.BodyBase64 = textOrBase64(a.RequestBody)
		if a.Status != 0 {
			v.Response = &struct {
				Status     int                 `json:"status"`
				Headers    map[string][]string `json:"headers,omitempty"`
				Body       string              `json:"body,omitempty"`
				BodyBase64 string              `json:"body_base64,omitempty"`
			}{Status: a.Status, Headers: a.ResponseHeaders}
			v.Response.Body, v.Response.BodyBase64 = textOrBase64(a.ResponseBody)
		}
	}
	return v
}

// ParseSince reads a --since / ?since= value: a duration back from now
// ("1h", "24h", "30m") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) { return parseTime("since", s, now) }

// ParseUntil reads an --until / ?until= value, the end of a time range, as
// ParseSince does.
func ParseUntil(s string, now time.Time) (time.Time, error) { return parseTime("until", s, now) }

func parseTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &timeError{name, s}
	}
	return t.UTC(), nil
}

type timeError struct{ name, s string }

func (e *timeError) Error() string {
	return e.name + ` "` + e.s + `"` + ": want a duration (1h, 24h) or an RFC 3339 time"
}
