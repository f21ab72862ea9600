package storesql

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// TestNew_Tables: every statement names the store's own tables and change
// column, never another store's.
func TestNew_Tables(t *testing.T) {
	q := New(Tables{Deliveries: "d_t", Attempts: "a_t", Subscriptions: "s_t", WebhookState: "w_t", Change: "c_col"})
	v := reflect.ValueOf(q)
	for i := range v.NumField() {
		text := v.Field(i).String()
		for _, other := range []string{"deliveries", "subscriptions", "webhook_state", "change", "rowhook_attempts"} {
			for _, w := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' || r == '(' || r == ')' }) {
				if w == other {
					t.Errorf("%s names %q: %s", v.Type().Field(i).Name, other, text)
				}
			}
		}
	}
	if !strings.Contains(q.DeliveryColumns, "body, c_col, event_time") || !strings.HasSuffix(q.SelectDeliveries, "FROM d_t") || !strings.HasSuffix(q.SelectAttempts, "FROM a_t") {
		t.Errorf("columns %q, select %q", q.DeliveryColumns, q.SelectDeliveries)
	}
}

func TestFilterWhere(t *testing.T) {
	since := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		f     dispatch.Filter
		where string
		args  []any
	}{
		{dispatch.Filter{}, " WHERE 1=1", nil},
		{dispatch.Filter{Webhook: "erp", Subscription: "sub_1", Status: dispatch.StatusFailed, Since: since, AfterSeq: 9},
			" WHERE 1=1 AND webhook = ? AND subscription = ? AND status = ? AND created_at >= ? AND seq < ?",
			[]any{"erp", "sub_1", "failed", since.UnixNano(), int64(9)}},
		{dispatch.Filter{Until: since, Key: "crm.t:1", EventID: "0-1-2:0", ID: "msg_1", Search: "x"},
			" WHERE 1=1 AND created_at < ? AND record_key = ? AND event_id = ? AND id = ? AND (id = ? OR event_id = ? OR record_key = ?)",
			[]any{since.UnixNano(), "crm.t:1", "0-1-2:0", "msg_1", "x", "x", "x"}},
		{dispatch.Filter{Key: "crm.tä_%:*"}, " WHERE 1=1 AND SUBSTR(record_key, 1, ?) = ?", []any{9, "crm.tä_%:"}},
	}
	for _, tt := range tests {
		where, args := FilterWhere(tt.f)
		if where != tt.where || !reflect.DeepEqual(args, tt.args) {
			t.Errorf("FilterWhere(%+v) = %q %v, want %q %v", tt.f, where, args, tt.where, tt.args)
		}
	}
}

func TestNanos(t *testing.T) {
	if Nanos(time.Time{}) != 0 || !FromNanos(0).IsZero() {
		t.Error("the zero time is not 0")
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 123, time.FixedZone("CET", 3600))
	if got := FromNanos(Nanos(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("round trip %v → %v", at, got)
	}
}

func TestJSONText(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want any
	}{{nil, nil}, {map[string][]string(nil), nil}, {map[string]int{"a": 1}, `{"a":1}`}} {
		got, err := JSONText(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("JSONText(%#v) = %#v, %v", tt.v, got, err)
		}
	}
	if _, err := JSONText(func() {}); err == nil {
		t.Error("a func encoded")
	}
}

func TestQueueName(t *testing.T) {
	if QueueName("erp", "") != "erp" || QueueName("erp", "sub_1") != "erp sub_1" {
		t.Error(QueueName("erp", ""), QueueName("erp", "sub_1"))
	}
}
