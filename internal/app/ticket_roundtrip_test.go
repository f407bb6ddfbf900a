package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/urls"
)

// TestTicketRoundTrip is issue 13's discussion both ways against a real Gitea, for someone
// who does not follow the repository: alice on a peer offers a ticket; a forge user's
// comment on the issue reaches her (the Ticket's participant) as a signed Note in reply to
// the Ticket, which dereferences at its id; her own reply, written into the forge by
// Fedforge, is not sent back out; closing the issue reaches her as a Resolve.
func TestTicketRoundTrip(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	tp := newTicketPeer(t)
	p := newPair(t, tp.host+"="+tp.addr)
	tp.attach(p.alpha.listen)
	ctx := context.Background()
	repo := g.CreateRepo(t, "roundtrip")
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	const secret = "roundtrip-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "hook": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "tracker"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "tracker",
			Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}}},
	}))
	tracker := urls.ForActor(p.alpha.base(), "tracker")
	waitServed(t, p.alpha, "tracker")
	_, relayURL := startHookRelay(t, p)
	owner, name := repo.Owner.UserName, repo.Name
	g.CreateWebhook(t, owner, name, relayURL+"/hooks/tracker/gitea", secret, "issues", "issue_comment")
	carol := g.CreateUser(t, "carol")

	alice := tp.actor("alice")
	offerID := "http://" + tp.host + "/offers/roundtrip"
	if code, body := tp.send(t, p, "alice", map[string]any{
		"@context": []string{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
		"id":       offerID, "type": "Offer", "actor": alice, "target": tracker.ID, "to": []string{tracker.ID},
		"object": map[string]any{"type": "Ticket", "attributedTo": alice, "name": "Docs are out of date",
			"source": map[string]any{"content": "The install page names v1.", "mediaType": "text/markdown"}},
	}); code != http.StatusAccepted {
		t.Fatalf("Offer answered %d %s", code, body)
	}
	ticket := tracker.Ticket(1)
	eventually(t, 90*time.Second, func() error {
		if len(tp.answers("Accept", offerID)) == 0 {
			return fmt.Errorf("no Accept yet (unverified: %v)", tp.unverified)
		}
		return nil
	})

	// notes returns the verified Creates alice received whose Note contains text.
	notes := func(text string) []map[string]any {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		var out []map[string]any
		for _, d := range tp.got {
			obj, _ := d["object"].(map[string]any)
			if d["type"] == "Create" && obj != nil && strings.Contains(fmt.Sprint(obj["content"]), text) {
				out = append(out, obj)
			}
		}
		return out
	}

	const said = "Fixed in the next release, thanks!"
	comment, _, err := carol.Client.CreateIssueComment(owner, name, 1, sdk.CreateIssueCommentOption{Body: said})
	must(t, err)
	t.Run("a forge comment reaches the submitter, who does not follow, as a Note in reply to the Ticket", func(t *testing.T) {
		var note map[string]any
		eventually(t, 90*time.Second, func() error {
			if got := notes(said); len(got) > 0 {
				note = got[0]
				return nil
			}
			return fmt.Errorf("alice has no Note of carol's comment (unverified: %v)", tp.unverified)
		})
		if note["inReplyTo"] != ticket || note["id"] != urls.Comment(ticket, comment.ID) {
			t.Errorf("Note id %v inReplyTo %v, want %s in reply to %s", note["id"], note["inReplyTo"], urls.Comment(ticket, comment.ID), ticket)
		}
		// The Note dereferences at its id, as a peer checks before it shows a reply.
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.alpha.listen+strings.TrimPrefix(fmt.Sprint(note["id"]), p.alpha.base()), nil)
		req.Host = alphaHost
		req.Header.Set("Accept", activitypub.AcceptActivity)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var served map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &served) != nil || served["id"] != note["id"] {
			t.Errorf("GET %v: %d %s", note["id"], resp.StatusCode, b)
		}
	})

	t.Run("her reply goes into the forge and is not sent back out to her", func(t *testing.T) {
		const reply = "Great, I will check the new page."
		replyID := "http://" + tp.host + "/notes/roundtrip-reply"
		if code, body := tp.send(t, p, "alice", map[string]any{
			"@context": activitypub.ActivityStreamsContext,
			"id":       replyID + "/activity", "type": "Create", "actor": alice, "to": []string{tracker.ID},
			"object": map[string]any{"id": replyID, "type": "Note", "attributedTo": alice, "inReplyTo": ticket, "content": "<p>" + reply + "</p>"},
		}); code != http.StatusAccepted {
			t.Fatalf("reply answered %d %s", code, body)
		}
		eventually(t, 90*time.Second, func() error {
			cs, _, err := g.Client.ListIssueComments(owner, name, 1, sdk.ListIssueCommentOptions{})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if strings.Contains(c.Body, reply) {
					return nil
				}
			}
			return fmt.Errorf("her reply is not a comment on the issue yet")
		})
		// Gitea's webhook for that comment arrives within seconds; then close the issue,
		// whose Resolve arrives after it, and look: no Note carries her reply back.
		closed := sdk.StateClosed
		_, _, err := g.Client.EditIssue(owner, name, 1, sdk.EditIssueOption{State: &closed})
		must(t, err)
		eventually(t, 90*time.Second, func() error {
			if len(tp.answers("Resolve", ticket)) == 0 {
				return fmt.Errorf("no Resolve of %s yet", ticket)
			}
			return nil
		})
		if got := notes(reply); len(got) != 0 {
			t.Errorf("her own reply came back out as a Note: %v", got)
		}
	})
}
