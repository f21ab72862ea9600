package dispatch

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logLines decodes the JSON lines in b.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// secondsAttr renders durations as the process logger does (NewLogger in
// internal/pipeline; dispatch cannot import it).
func secondsAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_seconds", a.Value.Duration().Seconds())
	}
	return a
}

func TestOutcomeLog_Modes(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	outcomes := []struct {
		webhook string
		st      Status
		took    time.Duration
	}{
		{"erp", StatusOK, 30 * time.Millisecond},
		{"erp", StatusOK, 10 * time.Millisecond},
		{"erp", StatusPending, 5 * time.Second},
		{"erp", StatusOK, 250 * time.Millisecond},
		{"erp", StatusDead, time.Second},
		{"crm", StatusFailed, 2 * time.Millisecond},
	}
	tests := []struct {
		cfg       LogConfig
		delivered int // INFO "delivered" lines
		summaries int // "deliveries" lines at the flush
	}{
		{LogConfig{}, 0, 2}, // summary, the default
		{LogConfig{DeliverySuccess: SuccessEvery}, 3, 0},
		{LogConfig{DeliverySuccess: SuccessSample, Sample: 2}, 2, 0}, // the 1st and 3rd success
		{LogConfig{DeliverySuccess: SuccessNone}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.withDefaults().DeliverySuccess, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: secondsAttr}))
			o := newOutcomeLog(tt.cfg, logger, t0)
			for i, oc := range outcomes {
				o.record(oc.webhook, oc.st, oc.took, &lazyLog{base: logger, args: []any{"delivery_id", i, "webhook", oc.webhook}}, 200)
			}
			o.flush(t0.Add(time.Minute))
			delivered, summaries := 0, map[string]map[string]any{}
			for _, l := range logLines(t, &buf) {
				switch l["msg"] {
				case "delivered":
					delivered++
					if l["level"] != "INFO" || l["duration_seconds"] == nil {
						t.Errorf("delivered line %v: want INFO with duration_seconds", l)
					}
				case "deliveries":
					summaries[l["webhook"].(string)] = l
				default:
					t.Errorf("unexpected line %v", l)
				}
			}
			if delivered != tt.delivered || len(summaries) != tt.summaries {
				t.Fatalf("%d delivered lines, %d summaries; want %d, %d\n%s", delivered, len(summaries), tt.delivered, tt.summaries, buf.String())
			}
			if tt.summaries == 0 {
				return
			}
			erp := summaries["erp"]
			want := map[string]any{"ok": 3.0, "retry": 1.0, "dead": 1.0, "failed": 0.0, "interval_seconds": 60.0,
				"latency_p50_seconds": 0.03, "latency_max_seconds": 0.25, "level": "INFO"}
			for k, v := range want {
				if erp[k] != v {
					t.Errorf("erp summary %s = %v, want %v (%v)", k, erp[k], v, erp)
				}
			}
			// No success: no latency to speak of.
			if crm := summaries["crm"]; crm["failed"] != 1.0 || crm["latency_p50_seconds"] != nil {
				t.Errorf("crm summary %v: want failed 1 and no latency", crm)
			}
			// The next interval starts empty: an idle webhook writes nothing.
			buf.Reset()
			o.flush(t0.Add(2 * time.Minute))
			if buf.Len() != 0 {
				t.Errorf("idle interval logged %s", buf.String())
			}
			o.record("erp", StatusOK, time.Millisecond, &lazyLog{base: logger}, 200)
			o.flush(t0.Add(2*time.Minute + 30*time.Second))
			if ls := logLines(t, &buf); len(ls) != 1 || ls[0]["ok"] != 1.0 || ls[0]["interval_seconds"] != 30.0 {
				t.Errorf("after an idle interval: %s", buf.String())
			}
		})
	}
}

func TestLogConfig_Validate(t *testing.T) {
	for _, tt := range []struct {
		cfg  LogConfig
		want string
	}{
		{LogConfig{}, ""},
		{LogConfig{DeliverySuccess: "sample", Sample: 10}, ""},
		{LogConfig{DeliverySuccess: "sometimes"}, `log.delivery_success: unknown value "sometimes"`},
		{LogConfig{SummaryInterval: time.Millisecond}, "log.summary_interval: must be at least 1s"},
		{LogConfig{Sample: -1}, "log.sample: must be at least 1"},
	} {
		c := Config{Log: tt.cfg}
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
