package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestRepoSurfaceConformance: forks and likes behave the same on both engines: one row
// per (repository, fork) and per (repository, liker), newest first in keyset pages, a
// federated Undo never removes a forge's star.
func TestRepoSurfaceConformance(t *testing.T) {
	ctx := context.Background()
	const repo, other = "https://h/actors/tool", "https://h/actors/other"
	runSuite(t, map[string]storeTest{
		"a fork is listed once, newest first, per upstream": func(t *testing.T, s Store, _ string) {
			for i, id := range []string{"https://git/a/tool", "https://peer/actors/b-tool", "https://git/a/tool"} {
				via := ViaForge
				if i == 1 {
					via = ViaFederation
				}
				created, err := s.RecordFork(ctx, Fork{ActorID: repo, ForkID: id, Via: via, Created: t0.Add(time.Duration(i) * time.Minute)})
				if err != nil {
					t.Fatal(err)
				}
				if want := i < 2; created != want {
					t.Errorf("RecordFork #%d created = %v, want %v", i, created, want)
				}
			}
			mustRecordFork(t, s, Fork{ActorID: other, ForkID: "https://git/a/tool", Via: ViaForge})
			if n, err := s.CountForks(ctx, repo); err != nil || n != 2 {
				t.Errorf("CountForks = %d, %v; want 2", n, err)
			}
			p, err := s.ListForks(ctx, repo, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := forkIDs(p.Items); !slices.Equal(got, []string{"https://peer/actors/b-tool", "https://git/a/tool"}) || p.Next != "" {
				t.Errorf("ListForks = %v next %q", got, p.Next)
			}
			if p.Items[0].Via != ViaFederation || !p.Items[1].Created.Equal(t0) {
				t.Errorf("fork round trip: %+v", p.Items)
			}
			if removed, err := s.RemoveFork(ctx, repo, "https://git/a/tool"); err != nil || !removed {
				t.Errorf("RemoveFork = %v, %v", removed, err)
			}
			if removed, _ := s.RemoveFork(ctx, repo, "https://git/a/tool"); removed {
				t.Error("RemoveFork of an unlisted fork reported a removal")
			}
			if n, _ := s.CountForks(ctx, other); n != 1 {
				t.Errorf("another upstream's forks changed: %d", n)
			}
		},
		"forks and likes page by cursor without loss": func(t *testing.T, s Store, _ string) {
			var want []string
			for i := range 45 {
				id := fmt.Sprintf("https://peer/actors/u%02d", i)
				mustRecordFork(t, s, Fork{ActorID: repo, ForkID: id, Via: ViaFederation})
				if _, err := s.RecordLike(ctx, Like{ActorID: repo, LikerID: id, LikeID: id + "/like", Via: ViaFederation}); err != nil {
					t.Fatal(err)
				}
				want = append([]string{id}, want...)
			}
			var forks, likes []string
			for cur, pages := "", 0; ; pages++ {
				p, err := s.ListForks(ctx, repo, cur, 20)
				if err != nil || pages > 5 {
					t.Fatalf("ListForks page %d: %v", pages, err)
				}
				forks = append(forks, forkIDs(p.Items)...)
				if cur = p.Next; cur == "" {
					break
				}
			}
			for cur, pages := "", 0; ; pages++ {
				p, err := s.ListLikes(ctx, repo, cur, 20)
				if err != nil || pages > 5 {
					t.Fatalf("ListLikes page %d: %v", pages, err)
				}
				for _, l := range p.Items {
					likes = append(likes, l.LikerID)
				}
				if cur = p.Next; cur == "" {
					break
				}
			}
			if !slices.Equal(forks, want) || !slices.Equal(likes, want) {
				t.Errorf("paged forks %v\nlikes %v\nwant %v", forks, likes, want)
			}
			if _, err := s.ListForks(ctx, repo, "not a cursor!", 20); !errors.Is(err, ErrBadCursor) {
				t.Errorf("bad cursor: %v, want ErrBadCursor", err)
			}
		},
		"one like per liker; undo removes only its own kind": func(t *testing.T, s Store, _ string) {
			alice := "https://peer/actors/alice"
			for i, likeID := range []string{alice + "/likes/1", alice + "/likes/2"} {
				created, err := s.RecordLike(ctx, Like{ActorID: repo, LikerID: alice, LikeID: likeID, Via: ViaFederation, Created: t0})
				if err != nil || created != (i == 0) {
					t.Errorf("RecordLike #%d = %v, %v; want %v", i, created, err, i == 0)
				}
			}
			if _, err := s.RecordLike(ctx, Like{ActorID: repo, LikerID: "https://git/bob", Via: ViaForge}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.CountLikes(ctx, repo); err != nil || n != 2 {
				t.Errorf("CountLikes = %d, %v; want 2", n, err)
			}
			l, err := s.GetLike(ctx, alice+"/likes/1")
			if err != nil || l.ActorID != repo || l.LikerID != alice || l.Via != ViaFederation || !l.Created.Equal(t0) {
				t.Errorf("GetLike = %+v, %v", l, err)
			}
			if _, err := s.GetLike(ctx, alice+"/likes/2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetLike of the uncounted second Like: %v, want ErrNotFound", err)
			}
			if removed, _ := s.RemoveLike(ctx, repo, "https://git/bob", ViaFederation); removed {
				t.Error("a federated removal took away a forge star")
			}
			if removed, err := s.RemoveLike(ctx, repo, alice, ViaFederation); err != nil || !removed {
				t.Errorf("RemoveLike = %v, %v", removed, err)
			}
			if n, _ := s.CountLikes(ctx, repo); n != 1 {
				t.Errorf("CountLikes after undo = %d, want 1", n)
			}
			if created, _ := s.RecordLike(ctx, Like{ActorID: repo, LikerID: alice, LikeID: alice + "/likes/3", Via: ViaFederation}); !created {
				t.Error("a like after an undo was not counted")
			}
		},
		"bad input is refused": func(t *testing.T, s Store, _ string) {
			if _, err := s.RecordFork(ctx, Fork{ActorID: repo, ForkID: "x", Via: "mail"}); err == nil {
				t.Error("RecordFork with an unknown via succeeded")
			}
			if _, err := s.RecordLike(ctx, Like{ActorID: repo, Via: ViaForge}); err == nil {
				t.Error("RecordLike without a liker succeeded")
			}
		},
	})
}

func mustRecordFork(t *testing.T, s Store, f Fork) {
	t.Helper()
	if _, err := s.RecordFork(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func forkIDs(fs []Fork) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.ForkID)
	}
	return out
}
