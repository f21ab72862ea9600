package backoff

import (
	"math"
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	tests := []struct {
		n            int
		initial, max time.Duration
		want         time.Duration
	}{
		{1, time.Second, time.Minute, time.Second},
		{0, time.Second, time.Minute, time.Second},
		{-5, time.Second, time.Minute, time.Second},
		{2, time.Second, time.Minute, 2 * time.Second},
		{4, time.Second, 10 * time.Second, 8 * time.Second},
		{5, time.Second, 10 * time.Second, 10 * time.Second},
		{200, time.Second, 10 * time.Second, 10 * time.Second},
		{math.MaxInt, time.Second, math.MaxInt64, math.MaxInt64}, // no overflow without a real cap
		{64, 3, math.MaxInt64, math.MaxInt64},
		{3, time.Hour, time.Minute, time.Minute}, // initial above the cap
		{3, 0, time.Minute, 0},
		{3, time.Second, 0, 0},
	}
	for _, tt := range tests {
		if got := Exponential(tt.n, tt.initial, tt.max); got != tt.want {
			t.Errorf("Exponential(%d, %v, %v) = %v, want %v", tt.n, tt.initial, tt.max, got, tt.want)
		}
	}
}

func TestEqualJitter(t *testing.T) {
	tests := []struct {
		d    time.Duration
		j    float64
		want time.Duration
	}{
		{8 * time.Second, 1, 8 * time.Second},
		{8 * time.Second, 0, 4 * time.Second},
		{8 * time.Second, 0.5, 6 * time.Second},
		{8 * time.Second, -1, 4 * time.Second},
		{8 * time.Second, 2, 8 * time.Second},
		{math.MaxInt64, 1, math.MaxInt64}, // never overflows
		{0, 1, 0},
	}
	for _, tt := range tests {
		if got := EqualJitter(tt.d, tt.j); got != tt.want {
			t.Errorf("EqualJitter(%v, %v) = %v, want %v", tt.d, tt.j, got, tt.want)
		}
	}
}
