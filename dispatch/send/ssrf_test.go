package send

import (
	"net/netip"
	"testing"
)

func TestGuard_AllowedIP(t *testing.T) {
	g, err := NewGuard([]string{"10.1.0.0/16", "192.168.5.5"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"8.8.8.8": true, "127.0.0.1": false, "::1": false, "10.0.0.1": false, "10.1.2.3": true,
		"192.168.5.5": true, "192.168.5.6": false, "169.254.169.254": false, "fe80::1": false,
		"100.64.0.1": false, "0.0.0.0": false, "::ffff:127.0.0.1": false, "224.0.0.1": false, "2606:4700::1111": true,
	}
	for ip, want := range tests {
		if got := g.AllowedIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AllowedIP(%s) = %v, want %v", ip, got, want)
		}
	}
}
