package gitsync

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/netguard"
)

// TestMirrorBetweenGiteas runs against two real Gitea instances on loopback (started once
// for both halves, as they take most of the time): the life of a federated branch, then
// the refusals, then https through the proxy's tunnel.
func TestMirrorBetweenGiteas(t *testing.T) {
	f := startForges(t)
	t.Run("life", func(t *testing.T) { testLife(t, f) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, f) })
	t.Run("https", func(t *testing.T) { testHTTPS(t, f) })
	t.Run("concurrent push on A", func(t *testing.T) { testConcurrentPush(t, f) })
}

// testLife: a federated branch created, fast-forwarded, unchanged, force-pushed upstream,
// protected when Bob committed to it, a conflict found at open time, and what forge B saw
// (no credential of forge A's, ever). Each step asserts forge A's state through git
// ls-remote or its API.
func testLife(t *testing.T, f *forges) {
	s := f.syncer(t, Config{})
	ctx := t.Context()
	fed := "federated/forge-b.example/" + f.alice + "/feature"
	base := f.git(t, "", "rev-parse", "main")

	f.git(t, "", "checkout", "--quiet", "-b", "feature")
	c1 := f.commit(t, "alice.txt", "hello\n", "Add a greeting\n\nWith a body.")
	f.pushB(t, "feature", false)

	var last string
	t.Run("created", func(t *testing.T) {
		res, err := s.Mirror(ctx, f.request("feature"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Branch != fed || !res.Created || res.Forced || res.Unchanged || res.OldHead != "" || res.NewHead != c1 {
			t.Fatalf("result = %+v, want %s created at %s", res, fed, c1)
		}
		if len(res.Commits) != 1 || res.Commits[0].Hash != c1 || res.Commits[0].Summary != "Add a greeting" ||
			res.Commits[0].AuthorName != f.alice || res.Commits[0].AuthorTime.IsZero() {
			t.Errorf("commits = %+v, want the one commit %s", res.Commits, c1)
		}
		if res.BaseHead != base || res.MergeBase != base || !res.Mergeable || len(res.Conflicts) != 0 {
			t.Errorf("merge: base %s, merge base %s, mergeable %v %v; want %s, clean", res.BaseHead, res.MergeBase, res.Mergeable, res.Conflicts, base)
		}
		if res.FetchedBytes == 0 {
			t.Error("no bytes counted from forge B: the fetch did not go through the proxy")
		}
		b := f.a.WaitPushed(t, f.owner, project, fed, c1)
		if b.Name != fed {
			t.Errorf("branch on A through its API = %q, want %q", b.Name, fed)
		}
		commit, _, err := f.a.Client.GetSingleCommit(f.owner, project, c1)
		if err != nil || commit.RepoCommit == nil || !strings.HasPrefix(commit.RepoCommit.Message, "Add a greeting") {
			t.Errorf("commit %s on A: %+v, %v", c1, commit, err)
		}
		last = res.NewHead
		f.noWorkDirsLeft(t)
	})

	t.Run("fast-forward", func(t *testing.T) {
		c2 := f.commit(t, "alice.txt", "hello\nworld\n", "Greet the world")
		c3 := f.commit(t, "more.txt", "more\n", "Add more")
		f.pushB(t, "feature", false)
		res, err := s.Mirror(ctx, f.request("feature"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Created || res.Forced || res.OldHead != last || res.NewHead != c3 {
			t.Fatalf("result = %+v, want a fast-forward %s..%s", res, last, c3)
		}
		if len(res.Commits) != 2 || res.Commits[0].Hash != c3 || res.Commits[1].Hash != c2 {
			t.Errorf("commits = %+v, want %s, %s (newest first)", res.Commits, c3, c2)
		}
		f.a.WaitPushed(t, f.owner, project, fed, c3)
		last = c3
	})

	t.Run("commit list capped", func(t *testing.T) {
		req := f.request("feature")
		req.Source.User = "capped"
		res, err := f.syncer(t, Config{MaxCommits: 2}).Mirror(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Created || !res.CommitsTruncated || len(res.Commits) != 2 || res.Commits[0].Hash != last {
			t.Fatalf("result = %+v, want the 2 newest of 3 commits, truncated", res)
		}
	})

	t.Run("unchanged", func(t *testing.T) {
		res, err := s.Mirror(ctx, f.request("feature"))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Unchanged || res.OldHead != last || res.NewHead != last || len(res.Commits) != 0 {
			t.Fatalf("result = %+v, want unchanged at %s", res, last)
		}
	})

	t.Run("force-push upstream", func(t *testing.T) {
		f.git(t, "", "commit", "--quiet", "--amend", "-m", "Add more, reworded")
		amended := f.pushB(t, "feature", true)

		// Without the head the caller last mirrored, a rewrite is refused.
		if res, err := s.Mirror(ctx, f.request("feature")); !errors.Is(err, ErrDiverged) {
			t.Fatalf("non-fast-forward without ExpectedHead: %+v, %v; want ErrDiverged", res, err)
		}
		if got := f.headOnA(t, fed); got != last {
			t.Fatalf("refused update moved %s on A to %s", fed, got)
		}

		req := f.request("feature")
		req.ExpectedHead = last
		res, err := s.Mirror(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Forced || res.OldHead != last || res.NewHead != amended || len(res.Commits) != 1 || res.Commits[0].Hash != amended {
			t.Fatalf("result = %+v, want forced %s -> %s with the one rewritten commit", res, last, amended)
		}
		f.a.WaitPushed(t, f.owner, project, fed, amended)
		last = amended
	})

	t.Run("commits added on A are kept", func(t *testing.T) {
		// Bob commits to the federated branch on A; Alice rewrites hers again.
		f.git(t, "", "checkout", "--quiet", "-b", "bobs", last)
		bobs := f.commit(t, "bob.txt", "bob\n", "Bob's fixup")
		f.git(t, f.a.Token, "push", "--quiet", f.aURL, "HEAD:refs/heads/"+fed)
		f.git(t, "", "checkout", "--quiet", "feature")
		f.git(t, "", "commit", "--quiet", "--amend", "-m", "Add more, again")
		f.pushB(t, "feature", true)

		req := f.request("feature")
		req.ExpectedHead = last
		if res, err := s.Mirror(ctx, req); !errors.Is(err, ErrDiverged) {
			t.Fatalf("rewrite over Bob's commit: %+v, %v; want ErrDiverged", res, err)
		}
		if got := f.headOnA(t, fed); got != bobs {
			t.Fatalf("%s on A = %s, want Bob's %s kept", fed, got, bobs)
		}
	})

	t.Run("conflict at open time", func(t *testing.T) {
		f.git(t, "", "checkout", "--quiet", "-b", "bob-main", base)
		f.commit(t, "README.md", "line one, Bob's way\n", "Bob edits the README")
		f.git(t, f.a.Token, "push", "--quiet", f.aURL, "HEAD:refs/heads/main")
		f.git(t, "", "checkout", "--quiet", "-b", "clash", base)
		f.commit(t, "README.md", "line one, Alice's way\n", "Alice edits the README")
		f.pushB(t, "clash", false)

		res, err := s.Mirror(ctx, f.request("clash"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Mergeable || res.MergeBase != base || len(res.Conflicts) != 1 || res.Conflicts[0] != "README.md" {
			t.Fatalf("result = %+v, want a conflict in README.md over merge base %s", res, base)
		}
		clashFed := "federated/forge-b.example/" + f.alice + "/clash"
		if f.headOnA(t, clashFed) != res.NewHead {
			t.Fatalf("%s not pushed although RequireMergeable was not set", clashFed)
		}

		req := f.request("clash")
		req.Source.User = "alice2"
		req.RequireMergeable = true
		if res, err := s.Mirror(ctx, req); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "README.md") {
			t.Fatalf("RequireMergeable: %+v, %v; want ErrConflict naming README.md", res, err)
		}
		if got := f.headOnA(t, "federated/forge-b.example/alice2/clash"); got != "" {
			t.Fatalf("conflicting branch pushed to A at %s", got)
		}
	})

	t.Run("forge B never saw forge A's credentials", func(t *testing.T) {
		seen := f.recorder.seen()
		if len(seen) == 0 {
			t.Fatal("the recorder in front of forge B saw no request")
		}
		for _, h := range seen {
			for k, vs := range h {
				for _, v := range vs {
					if strings.EqualFold(k, "Authorization") || strings.Contains(v, f.a.Token) {
						t.Errorf("forge B received %s: %s", k, v)
					}
				}
			}
		}
	})
	f.noWorkDirsLeft(t)
}

// testRefusals: a clone URL on a refused address, a branch over the size cap and a remote
// that never answers each fail with their error and push nothing.
func testRefusals(t *testing.T, f *forges) {
	ctx := t.Context()
	f.git(t, "", "checkout", "--quiet", "-b", "big")
	f.commit(t, "big.txt", randomText(t, 1<<20), "A megabyte")
	f.pushB(t, "big", false)

	t.Run("refused address", func(t *testing.T) {
		silent := startSilent(t)
		// localhost and forge-b.test are names that resolve to loopback only when dialled
		// (through DNS or /etc/hosts, like a rebinding name, and through the guard's static
		// map), and the source guard does not allow loopback: the proxy's dialer must refuse
		// them. Without the guard, git would reach the silent listener (and time out).
		strict := netguard.New(netguard.Config{AllowHTTP: true, Resolve: map[string]string{"forge-b.test": silent.addr}})
		s := f.syncer(t, Config{Source: strict, Timeout: 10e9})
		_, port, _ := strings.Cut(silent.addr, ":")
		for name, cloneURL := range map[string]string{
			"localhost": "http://localhost:" + port + "/" + f.alice + "/" + project + ".git",
			"mapped":    "http://forge-b.test/" + f.alice + "/" + project + ".git",
			"literal":   "http://" + silent.addr + "/" + f.alice + "/" + project + ".git",
		} {
			req := f.request("big")
			req.Source.CloneURL = cloneURL
			res, err := s.Mirror(ctx, req)
			if !errors.Is(err, netguard.ErrRefused) {
				t.Errorf("%s: %+v, %v; want netguard.ErrRefused", name, res, err)
			}
		}
		if n := silent.count(); n != 0 {
			t.Errorf("the refused address received %d connections, want none", n)
		}
		if got := f.headOnA(t, "federated/forge-b.example/"+f.alice+"/big"); got != "" {
			t.Errorf("refused fetch pushed %s", got)
		}
	})

	t.Run("over the size cap", func(t *testing.T) {
		s := f.syncer(t, Config{MaxFetchBytes: 256 << 10})
		res, err := s.Mirror(ctx, f.request("big"))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("1 MiB branch with a 256 KiB cap: %+v, %v; want ErrTooLarge", res, err)
		}
		if got := f.headOnA(t, "federated/forge-b.example/"+f.alice+"/big"); got != "" {
			t.Errorf("oversize fetch pushed %s", got)
		}
		// The same branch under a cap it fits in goes through.
		if _, err := f.syncer(t, Config{MaxFetchBytes: 4 << 20}).Mirror(ctx, f.request("big")); err != nil {
			t.Errorf("1 MiB branch with a 4 MiB cap: %v", err)
		}
	})

	t.Run("remote never answers", func(t *testing.T) {
		silent := startSilent(t)
		s := f.syncer(t, Config{Timeout: 3e9})
		req := f.request("big")
		req.Source.CloneURL = "http://" + silent.addr + "/" + f.alice + "/" + project + ".git"
		req.Source.User = "hung"
		res, err := s.Mirror(ctx, req)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("silent remote: %+v, %v; want ErrTimeout", res, err)
		}
		if silent.count() == 0 {
			t.Error("the silent remote was never reached: the timeout came from elsewhere")
		}
		if got := f.headOnA(t, "federated/forge-b.example/hung/big"); got != "" {
			t.Errorf("hung fetch pushed %s", got)
		}
	})

	t.Run("no common history", func(t *testing.T) {
		f.git(t, "", "checkout", "--quiet", "--orphan", "orphan")
		f.git(t, "", "rm", "-r", "--quiet", "-f", ".")
		f.commit(t, "other.txt", "another project\n", "Unrelated root")
		f.pushB(t, "orphan", false)
		req := f.request("orphan")
		req.RequireMergeable = true
		res, err := f.syncer(t, Config{}).Mirror(ctx, req)
		if !errors.Is(err, ErrConflict) || res == nil || res.MergeBase != "" || res.Mergeable {
			t.Fatalf("unrelated branch: %+v, %v; want ErrConflict without a merge base", res, err)
		}
		if got := f.headOnA(t, res.Branch); got != "" {
			t.Errorf("unrelated branch pushed %s", got)
		}
	})

	t.Run("missing branch", func(t *testing.T) {
		res, err := f.syncer(t, Config{}).Mirror(ctx, f.request("no-such-branch"))
		if !errors.Is(err, ErrNoBranch) {
			t.Fatalf("missing branch: %+v, %v; want ErrNoBranch", res, err)
		}
	})
	f.noWorkDirsLeft(t)
}

// TestMirrorBadNames: names from remote input that git must never see are refused before
// any process starts (Config.Git points nowhere, so any run of git would fail otherwise).
func TestMirrorBadNames(t *testing.T) {
	guard := netguard.New(netguard.Config{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s, err := New(Config{Source: guard, Target: guard, Git: "/nonexistent/git", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	good := Request{
		Source: Source{CloneURL: "http://127.0.0.1:1/alice/p.git", Branch: "feature", Host: "b.example", User: "alice"},
		Target: Target{CloneURL: "http://127.0.0.1:2/bob/p.git", BaseBranch: "main"},
	}
	tests := map[string]struct {
		edit func(*Request)
		want error
	}{
		"dot dot":        {edit: func(r *Request) { r.Source.Branch = "a/../../x" }, want: ErrBadRef},
		"option":         {edit: func(r *Request) { r.Source.Branch = "--upload-pack=touch /tmp/x" }, want: ErrBadRef},
		"control":        {edit: func(r *Request) { r.Source.Branch = "a\x1b[31m" }, want: ErrBadRef},
		"refspec":        {edit: func(r *Request) { r.Source.Branch = "x:refs/heads/main" }, want: ErrBadRef},
		"force refspec":  {edit: func(r *Request) { r.Source.Branch = "+x" }, want: nil}, // '+' is fine inside a name
		"user path":      {edit: func(r *Request) { r.Source.User = "../main" }, want: ErrBadRef},
		"host option":    {edit: func(r *Request) { r.Source.Host = "-c" }, want: ErrBadRef},
		"base":           {edit: func(r *Request) { r.Target.BaseBranch = "-main" }, want: ErrBadRef},
		"expected head":  {edit: func(r *Request) { r.ExpectedHead = "HEAD~1" }, want: ErrBadRef},
		"ext transport":  {edit: func(r *Request) { r.Source.CloneURL = "ext::sh -c touch% /tmp/x" }, want: netguard.ErrRefused},
		"file transport": {edit: func(r *Request) { r.Source.CloneURL = "file:///etc" }, want: netguard.ErrRefused},
		"credentials":    {edit: func(r *Request) { r.Source.CloneURL = "http://u:p@127.0.0.1:1/a.git" }, want: netguard.ErrRefused},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := good
			tc.edit(&req)
			_, err := s.Mirror(context.Background(), req)
			if tc.want == nil {
				// Valid names get as far as running git, which is not there.
				if err == nil || errors.Is(err, ErrBadRef) || errors.Is(err, netguard.ErrRefused) {
					t.Fatalf("valid request refused as bad input: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Mirror = %v, want %v", err, tc.want)
			}
		})
	}
}
