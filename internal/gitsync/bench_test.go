package gitsync

import (
	"fmt"
	"testing"
)

// BenchmarkMirror measures mirroring a small branch (one or two small commits over Bob's
// one) between two Gitea instances on loopback: "create" makes a new federated branch each
// time, "update" brings one new commit into an existing one (the commit is made and pushed
// to forge B outside the timer), "plain-push" is a user's git push of the same branch to
// forge A, for comparison. Run it with
//
//	go test -run '^$' -bench Mirror -benchtime 20x ./internal/gitsync/
func BenchmarkMirror(b *testing.B) {
	f := startForges(b)
	s := f.syncer(b, Config{})
	f.git(b, "", "checkout", "--quiet", "-b", "small")
	f.commit(b, "small.txt", "small\n", "A small change")
	f.pushB(b, "small", false)

	b.Run("create", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			req := f.request("small")
			req.Source.User = fmt.Sprintf("bench%d", i)
			if _, err := s.Mirror(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What Gitea A takes for a plain push of the same branch by a user, for comparison:
	// most of a Mirror is this push (Gitea's pre- and post-receive hooks).
	b.Run("plain-push", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			f.git(b, f.a.Token, "push", "--quiet", f.aURL, fmt.Sprintf("HEAD:refs/heads/plain%d", i))
		}
	})
	n := 0 // commits made so far, across the runs of "update"
	b.Run("update", func(b *testing.B) {
		req := f.request("small")
		req.Source.User = "bench-update"
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			n++
			f.commit(b, "small.txt", fmt.Sprintf("small %d\n", n), fmt.Sprintf("Change %d", n))
			f.pushB(b, "small", false)
			b.StartTimer()
			res, err := s.Mirror(b.Context(), req)
			if err != nil {
				b.Fatal(err)
			}
			if i > 0 && (res.Created || len(res.Commits) != 1) {
				b.Fatalf("update %d: %+v, want one new commit", i, res)
			}
		}
	})
}
