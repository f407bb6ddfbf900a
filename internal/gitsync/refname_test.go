package gitsync

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestValidateBranch(t *testing.T) {
	tests := map[string]struct {
		name string
		ok   bool
	}{
		"simple":             {name: "feature", ok: true},
		"nested":             {name: "alice/fix-42", ok: true},
		"unicode":            {name: "café", ok: true},
		"dots inside":        {name: "v1.2.x", ok: true},
		"empty":              {name: ""},
		"dot dot":            {name: "a..b"},
		"parent":             {name: "../x"},
		"leading dash":       {name: "-x"},
		"option":             {name: "--upload-pack=touch /tmp/pwned"},
		"control":            {name: "a\x01b"},
		"newline":            {name: "a\nb"},
		"del":                {name: "a\x7fb"},
		"bidi override":      {name: "a\u202eb"},
		"space":              {name: "a b"},
		"tilde":              {name: "a~1"},
		"caret":              {name: "a^"},
		"colon":              {name: "a:b"},
		"question":           {name: "a?"},
		"star":               {name: "a*"},
		"bracket":            {name: "a[b"},
		"backslash":          {name: `a\b`},
		"at brace":           {name: "a@{1}"},
		"at":                 {name: "@"},
		"HEAD":               {name: "HEAD"},
		"full ref":           {name: "refs/heads/x"},
		"double slash":       {name: "a//b"},
		"leading slash":      {name: "/a"},
		"trailing slash":     {name: "a/"},
		"trailing dot":       {name: "a."},
		"component dot":      {name: "a/.b"},
		"lock":               {name: "a.lock"},
		"component lock":     {name: "a.lock/b"},
		"invalid utf-8":      {name: "a\xffb"},
		"too long":           {name: strings.Repeat("a", MaxBranchLen+1)},
		"longest":            {name: strings.Repeat("a", MaxBranchLen), ok: true},
		"component too long": {name: "x/" + strings.Repeat("b", MaxBranchLen-2), ok: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateBranch(tc.name)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadRef)) {
				t.Fatalf("ValidateBranch(%q) = %v, want ok %v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestFederatedBranch(t *testing.T) {
	tests := map[string]struct {
		host, user, branch, want string
	}{
		"plain":       {host: "forge-b.example", user: "alice", branch: "fix/typo", want: "federated/forge-b.example/alice/fix/typo"},
		"port":        {host: "127.0.0.1:3000", user: "alice", branch: "x", want: "federated/127.0.0.1_3000/alice/x"},
		"upper host":  {host: "Forge.Example", user: "Alice", branch: "x", want: "federated/forge.example/Alice/x"},
		"slash user":  {host: "h", user: "a/b", branch: "x"},
		"dotdot host": {host: "..", user: "a", branch: "x"},
		"dash user":   {host: "h", user: "-a", branch: "x"},
		"empty user":  {host: "h", user: "", branch: "x"},
		"lock user":   {host: "h", user: "a.lock", branch: "x"},
		"bad branch":  {host: "h", user: "a", branch: "-x"},
		"space host":  {host: "h h", user: "a", branch: "x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := FederatedBranch(tc.host, tc.user, tc.branch)
			if tc.want == "" {
				if !errors.Is(err, ErrBadRef) {
					t.Fatalf("FederatedBranch(%q, %q, %q) = %q, %v; want ErrBadRef", tc.host, tc.user, tc.branch, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FederatedBranch(%q, %q, %q) = %q, %v; want %q", tc.host, tc.user, tc.branch, got, err, tc.want)
			}
		})
	}
}

// FuzzValidateBranch checks that every name ValidateBranch accepts is also a valid branch
// for git itself (git check-ref-format --branch) and a valid federated ref, so that the Go
// rules are never looser than git's.
func FuzzValidateBranch(f *testing.F) {
	for _, s := range []string{"feature", "a/b", "a..b", "-x", "a.lock", "café", "a@{1}", "x/.y", "a\x00b", "a\u202eb", "@", "a/b/"} {
		f.Add(s)
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		f.Fatalf("git not found (apt-get install git): %v", err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateBranch(name) != nil {
			return
		}
		full, err := FederatedBranch("h.example", "u", name)
		if err != nil {
			t.Fatalf("valid branch %q gives no federated branch: %v", name, err)
		}
		for _, args := range [][]string{{"check-ref-format", "--branch", name}, {"check-ref-format", "refs/heads/" + full}} {
			if out, err := exec.Command(gitBin, args...).CombinedOutput(); err != nil {
				t.Fatalf("accepted %q but git %v refuses it: %v: %s", name, args, err, out)
			}
		}
	})
}
