package peers

import "testing"

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"v20.19.0", true}, {"v20.20.2", true}, {"v22.1.0", true}, {"v20.18.3", false},
		{"v18.19.1", false}, {"v20", false}, {"v21.0.0-pre", true}, {"garbage", false},
	} {
		if got := atLeast(tt.v, minNode); got != tt.want {
			t.Errorf("atLeast(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// The pinned packages run: package.json's versions are what is installed.
func TestNode(t *testing.T) {
	if node := Node(t); node == "" {
		t.Fatal("Node returned no path")
	}
}
