package send

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrForbiddenAddress: a subscription target resolves to an address the
// SSRF guard refuses.
var ErrForbiddenAddress = errors.New("dispatch: address not allowed for subscriptions")

// Guard keeps subscription targets off loopback, private, link-local,
// multicast and unspecified addresses unless allow-listed. It checks at
// subscription time and again on every dial, on the address actually
// dialled, so a DNS answer that changes (rebinding) cannot get around it.
type Guard struct {
	hosts    map[string]bool
	prefixes []netip.Prefix
}

// NewGuard builds a guard from allowed host names, addresses and CIDRs.
func NewGuard(allowed []string) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}}
	for _, a := range allowed {
		a = strings.TrimSpace(a)
		if p, err := netip.ParsePrefix(a); err == nil {
			g.prefixes = append(g.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			g.prefixes = append(g.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		if a == "" {
			return nil, errors.New("empty allowed host")
		}
		g.hosts[strings.ToLower(a)] = true
	}
	return g, nil
}

// AllowedIP reports whether ip may be dialled.
func (g *Guard) AllowedIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!sharedAddressSpace.Contains(ip) && !ip.IsMulticast() && !ip.IsUnspecified()
}

// sharedAddressSpace is carrier-grade NAT space (RFC 6598), private in
// practice though not in netip's IsPrivate.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// CheckURL checks a subscription target: http(s), a host, and every address
// it resolves to allowed (or the host name allow-listed).
func (g *Guard) CheckURL(ctx context.Context, raw string, resolver *net.Resolver) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("target_url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target_url: scheme %q: want http or https", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("target_url: no host")
	}
	if u.User != nil {
		return errors.New("target_url: credentials in the URL are not accepted")
	}
	if g.hosts[strings.ToLower(host)] {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !g.AllowedIP(ip) {
			return fmt.Errorf("target_url: %s: %w", host, ErrForbiddenAddress)
		}
		return nil
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("target_url: resolve %s: %w", host, err)
	}
	for _, ip := range addrs {
		if !g.AllowedIP(ip) {
			return fmt.Errorf("target_url: %s resolves to %s: %w", host, ip, ErrForbiddenAddress)
		}
	}
	return nil
}

// dialControl is a net.Dialer Control function refusing forbidden
// addresses at connect time. allowedHost reports whether the dial's host
// name was allow-listed (set per request through the dial address).
func (g *Guard) dialControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, ErrForbiddenAddress)
	}
	if !g.AllowedIP(ip) {
		return fmt.Errorf("dial %s: %w", address, ErrForbiddenAddress)
	}
	return nil
}

// DialContext returns a dial function for subscription transports: host
// names allow-listed by name may reach any address; every other dial is
// checked by address at connect time.
func (g *Guard) DialContext(base *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *base
	guarded.Control = g.dialControl
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && g.hosts[strings.ToLower(host)] {
			return base.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}
