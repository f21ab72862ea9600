package dispatch

import (
	"testing"
	"time"
)

func TestParseSchedule_Next(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 7, 30, 0, time.UTC) // a Monday
	tests := []struct {
		spec string
		want time.Time
	}{
		{"every 5m", time.Date(2026, 11, 23, 10, 10, 0, 0, time.UTC)},
		{"every 1h", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)},
		{"0 2 * * *", time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)},
		{"30 9-17 * * mon-fri", time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)},
		{"0 0 * * sun", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * 7", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 jan *", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 12 1,15 * *", time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)},
		// Both day fields restricted: either matches (Vixie cron).
		{"0 0 1 * mon", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"0 0 30 2 *", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(base); !got.Equal(tt.want) {
				t.Errorf("Next(%v) = %v, want %v", base, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"every", "every 10ms", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "* * * foo *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	// Cron in a zone: 02:00 in Paris is 01:00 UTC in winter.
	s, _ := ParseSchedule("0 2 * * *")
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if got := WithLocation(s, paris).Next(base); !got.Equal(time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("Paris 02:00 = %v UTC", got.UTC())
	}
}
