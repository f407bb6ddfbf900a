package policy

import (
	"strings"
	"testing"
)

func TestParseBlocklist(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []Entry
		wantErr string
	}{
		"mastodon export": {
			in: "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n" +
				"spam.example,suspend,true,true,Spam,false\nloud.example,silence,false,false,,false\n",
			want: []Entry{{"spam.example", SeveritySuspend}, {"loud.example", SeveritySilence}},
		},
		"header without hash, reordered": {
			in:   "severity,domain\nsuspend,Bad.Example\n",
			want: []Entry{{"bad.example", SeveritySuspend}},
		},
		"no header": {
			in:   "a.example,suspend\nb.example,noop\n",
			want: []Entry{{"a.example", SeveritySuspend}, {"b.example", SeverityNoop}},
		},
		"plain list": {
			in:   "// comment\na.example\n\n*.b.example\n",
			want: []Entry{{"a.example", SeveritySuspend}, {"b.example", SeveritySuspend}},
		},
		"unknown severity": {in: "#domain,#severity\na.example,ban\n", wantErr: "unknown severity"},
		"obfuscated":       {in: "#domain,#severity\nmasto*.example,suspend\n", wantErr: "not a domain"},
		"no domain column": {in: "#severity,#comment\nsuspend,x\n", wantErr: "no domain column"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseBlocklist(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("entry %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	deny := Rules{Mode: Denylist, Hosts: []string{"bad.example", "*.evil.example"},
		Blocklist: []Entry{{"spam.example", SeveritySuspend}, {"quiet.example", SeveritySilence}}}
	allow := Rules{Mode: Allowlist, Hosts: []string{"friend.example", "*.partner.example", "evil.example"}}
	tests := map[string]struct {
		rules []Rules
		host  string
		want  bool
	}{
		"no policy allows":                {nil, "anyone.example", true},
		"exact deny":                      {[]Rules{deny}, "bad.example", false},
		"exact deny not subdomain":        {[]Rules{deny}, "sub.bad.example", true},
		"wildcard deny domain itself":     {[]Rules{deny}, "evil.example", false},
		"wildcard deny subdomain":         {[]Rules{deny}, "a.b.evil.example", false},
		"blocklist suspend subdomain":     {[]Rules{deny}, "m.spam.example", false},
		"blocklist silence not refused":   {[]Rules{deny}, "quiet.example", true},
		"case and trailing dot":           {[]Rules{deny}, "BAD.example.", false},
		"port ignored for exact":          {[]Rules{deny}, "bad.example:8443", false},
		"allowlist admits listed":         {[]Rules{allow}, "friend.example", true},
		"allowlist refuses unlisted":      {[]Rules{allow}, "stranger.example", false},
		"allowlist wildcard":              {[]Rules{allow}, "git.partner.example", true},
		"deny wins over allow":            {[]Rules{allow, deny}, "evil.example", false},
		"both: allowed and not denied":    {[]Rules{allow, deny}, "friend.example", true},
		"lookalike suffix is not a match": {[]Rules{deny}, "notevil.example", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Compile(tc.rules...).Allowed(tc.host); got != tc.want {
				t.Fatalf("Allowed(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}
