package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	forgegitea "github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/urls"
)

// TestRealGiteaDiscussionReachesFollowers drives the outbound ticket discussion from a
// real Gitea, with no recorded payload: an issue opened in Gitea gets a comment from a
// forge user and is closed; a follower of the Repository actor on another loopback
// address receives, signed, a Create{Note} in reply to the issue's Ticket and a Resolve
// of the Ticket. A comment Fedforge itself wrote (its key marker in the body) is not
// sent back out.
func TestRealGiteaDiscussionReachesFollowers(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	const secret = "gitea-thread-secret"

	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "gitea-hook"},
		StringData: map[string]string{"secret": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "demo", Name: "demo",
			// No event list: comments and closes are part of "everything".
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "gitea-hook", Key: "secret"}}}},
	}))
	waitServed(t, p.alpha, "demo")
	watcher, beta := p.watchDemo(t)
	demo := urls.ForActor(p.alpha.base(), "demo")
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })

	relay, relayURL := startHookRelay(t, p)
	repo, _, err := g.Client.CreateRepo(gitea.CreateRepoOption{Name: "demo", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository on %s: %v", g.URL, err)
	}
	owner := repo.Owner.UserName
	g.CreateWebhook(t, owner, repo.Name, relayURL+"/hooks/demo/gitea", secret, "issues", "issue_comment")
	carol := g.CreateUser(t, "carol")

	issue, _, err := g.Client.CreateIssue(owner, repo.Name, gitea.CreateIssueOption{Title: "Crash on start", Body: "It crashes."})
	if err != nil {
		t.Fatalf("create issue on %s: %v", g.URL, err)
	}
	ticket := demo.Ticket(issue.Index)
	const said = "Same here, on arm64."
	comment, _, err := carol.Client.CreateIssueComment(owner, repo.Name, issue.Index, gitea.CreateIssueCommentOption{Body: said})
	if err != nil {
		t.Fatalf("comment on %s: %v", g.URL, err)
	}
	const relayed = "A reply that came from the Fediverse."
	own := forgegitea.Attributed(relayed, forge.FormatPlain, forge.RemoteAuthor{Handle: "@alice@social.example", URL: "https://social.example/users/alice"},
		"https://social.example/notes/1", "https://social.example/activities/1", "Written")
	if _, _, err := g.Client.CreateIssueComment(owner, repo.Name, issue.Index, gitea.CreateIssueCommentOption{Body: own}); err != nil {
		t.Fatalf("comment with the marker on %s: %v", g.URL, err)
	}
	closed := gitea.StateClosed
	if _, _, err := g.Client.EditIssue(owner, repo.Name, issue.Index, gitea.EditIssueOption{State: &closed}); err != nil {
		t.Fatalf("close issue on %s: %v", g.URL, err)
	}

	t.Run("the comment reaches the follower as a Note in reply to the Ticket", func(t *testing.T) {
		var note *activitypub.Object
		eventually(t, 90*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Create") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err == nil && d.Object.Object != nil && strings.Contains(d.Object.Object.Content, said) {
					if r.ActorID != demo.ID {
						return fmt.Errorf("comment Note from %s", r.ActorID)
					}
					note = d.Object.Object
					return nil
				}
			}
			return fmt.Errorf("no Note of the comment received; deliveries answered by alpha: %+v", relay.answered(func(hookCall) bool { return true }))
		})
		if want := urls.Comment(ticket, comment.ID); note.ID != want {
			t.Errorf("Note id %s, want %s", note.ID, want)
		}
		if note.InReplyTo.ID() != ticket || note.ASContext.ID() != ticket {
			t.Errorf("Note inReplyTo %s context %s, want the Ticket %s", note.InReplyTo.ID(), note.ASContext.ID(), ticket)
		}
		if len(note.AttributedTo) != 1 || note.AttributedTo[0].ID() != demo.ID {
			t.Errorf("Note attributed to %v, want the Repository actor", note.AttributedTo.IDs())
		}
		for _, want := range []string{">carol</a>", g.URL + "/carol", comment.HTMLURL} {
			if !strings.Contains(note.Content, want) {
				t.Errorf("Note content lacks %s: %s", want, note.Content)
			}
		}
		if !note.Cc.Contains(urls.ObjectFollowers(ticket)) {
			t.Errorf("Note cc %v lacks the Ticket's followers", note.Cc.IDs())
		}
	})

	t.Run("closing the issue reaches the follower as a Resolve of the Ticket", func(t *testing.T) {
		eventually(t, 90*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Resolve") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err == nil && d.Object.ID() == ticket && r.ActorID == demo.ID {
					return nil
				}
			}
			return fmt.Errorf("no Resolve of %s received", ticket)
		})
	})

	t.Run("a comment Fedforge wrote is not sent back out", func(t *testing.T) {
		// Both comment deliveries answered (202) by alpha: only then is "not sent" a fact.
		eventually(t, 90*time.Second, func() error {
			calls := relay.answered(func(c hookCall) bool { return c.event == "issue_comment" })
			if len(calls) < 2 {
				return fmt.Errorf("alpha answered %d issue_comment deliveries, want 2", len(calls))
			}
			for _, c := range calls {
				if c.status != http.StatusAccepted {
					return fmt.Errorf("alpha answered %+v", c)
				}
			}
			return nil
		})
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities WHERE instr(CAST(raw AS TEXT), ?) > 0`, relayed).Scan(&n))
		if n != 0 {
			t.Errorf("alpha published %d activities carrying the comment it wrote itself", n)
		}
		for _, r := range receivedOf(t, beta, watcher, "Create") {
			if strings.Contains(string(r.Raw), relayed) {
				t.Errorf("the follower received the comment Fedforge wrote: %s", r.ID)
			}
		}
	})
}
