package policy

import (
	"fmt"
	"strings"
	"testing"
)

// blocklistCSV is a Mastodon-format domain_blocks export of n suspended domains, the
// size of the large public blocklists (issue 17: 10,000 domains).
func blocklistCSV(n int) string {
	var b strings.Builder
	b.WriteString("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n")
	for i := range n {
		fmt.Fprintf(&b, "spam%05d.example,suspend,true,true,spam,false\n", i)
	}
	return b.String()
}

// BenchmarkAllowed measures one inbox POST's policy check (Matcher.Allowed on the
// sender's host, which is not listed: the common case; and a listed subdomain) with no
// blocklist and with a 10,000-domain one, for the ratio between them.
//
//	go test ./internal/policy -run '^$' -bench Allowed -count 3
func BenchmarkAllowed(b *testing.B) {
	for _, n := range []int{0, 10000} {
		entries, err := ParseBlocklist(strings.NewReader(blocklistCSV(n)))
		if err != nil || len(entries) != n {
			b.Fatalf("ParseBlocklist: %d entries, %v", len(entries), err)
		}
		m := Compile(Rules{Mode: Denylist, Hosts: []string{"spam.example", "*.abuse.example"}, Blocklist: entries})
		for _, host := range []string{"social.remote.example:443", "a.b.spam09999.example"} {
			want := n == 0 || !strings.Contains(host, "spam")
			b.Run(fmt.Sprintf("domains=%d/host=%s", n, host), func(b *testing.B) {
				for b.Loop() {
					if m.Allowed(host) != want {
						b.Fatalf("Allowed(%s) != %v", host, want)
					}
				}
			})
		}
	}
}

// BenchmarkCompileBlocklist is the one-off cost when the blocklist ConfigMap changes:
// parsing and compiling 10,000 domains.
func BenchmarkCompileBlocklist(b *testing.B) {
	csv := blocklistCSV(10000)
	for b.Loop() {
		entries, err := ParseBlocklist(strings.NewReader(csv))
		if err != nil {
			b.Fatal(err)
		}
		Compile(Rules{Mode: Denylist, Blocklist: entries})
	}
}
