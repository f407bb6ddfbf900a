package policy

import (
	"net"
	"strings"
)

// Mode mirrors FederationPolicy's spec.mode.
type Mode string

// Modes of a rule set.
const (
	Allowlist Mode = "Allowlist"
	Denylist  Mode = "Denylist"
)

// Rules is one compiled FederationPolicy.
type Rules struct {
	Mode Mode
	// Hosts are exact hosts ("a.example") or wildcards ("*.example": the domain and every
	// subdomain).
	Hosts []string
	// Blocklist entries refuse the domain and every subdomain, as Mastodon does, when
	// their severity is suspend.
	Blocklist []Entry
}

// Matcher answers whether a host may federate, for a set of policies on one server.
type Matcher struct {
	allowlists []hostSet // each allowlist must admit the host
	deny       hostSet
}

type hostSet struct {
	exact    map[string]bool
	suffixes map[string]bool // domain and subdomains
}

func newHostSet() hostSet { return hostSet{exact: map[string]bool{}, suffixes: map[string]bool{}} }

func (s hostSet) add(pattern string) {
	p := strings.ToLower(strings.TrimSpace(pattern))
	if strings.HasPrefix(p, "*.") {
		s.suffixes[p[2:]] = true
		return
	}
	s.exact[p] = true
}

func (s hostSet) has(host string) bool {
	if s.exact[host] {
		return true
	}
	h := host
	if bare, _, err := net.SplitHostPort(h); err == nil {
		if s.exact[bare] {
			return true
		}
		h = bare
	}
	for {
		if s.suffixes[h] {
			return true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return false
		}
		h = h[i+1:]
	}
}

// Compile builds a Matcher from several policies: a host is refused when any denylist
// (or imported blocklist) names it, or when any allowlist does not.
func Compile(rules ...Rules) *Matcher {
	m := &Matcher{deny: newHostSet()}
	for _, r := range rules {
		switch r.Mode {
		case Allowlist:
			s := newHostSet()
			for _, h := range r.Hosts {
				s.add(h)
			}
			m.allowlists = append(m.allowlists, s)
		default:
			for _, h := range r.Hosts {
				m.deny.add(h)
			}
		}
		for _, e := range r.Blocklist {
			if e.Severity == SeveritySuspend {
				m.deny.add("*." + e.Domain)
			}
		}
	}
	return m
}

// Allowed reports whether host (optionally with a port) may federate with the server.
func (m *Matcher) Allowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if m.deny.has(host) {
		return false
	}
	for _, a := range m.allowlists {
		if !a.has(host) {
			return false
		}
	}
	return true
}
