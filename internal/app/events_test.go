package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// described lists obj's Events the way `kubectl describe` does (core/v1 Events selected
// by the involved object's kind, name and uid) as "Type Reason: note" lines.
func described(t *testing.T, p *pair, obj client.Object, kind string) []string {
	t.Helper()
	var list corev1.EventList
	must(t, p.k8s.List(context.Background(), &list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{
		"involvedObject.kind": kind, "involvedObject.name": obj.GetName(), "involvedObject.uid": string(obj.GetUID()),
	}))
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Type+" "+e.Reason+": "+e.Message)
	}
	return out
}

// tells waits until obj's Events hold a line starting with each of want, in any order.
func tells(t *testing.T, p *pair, obj client.Object, kind string, want ...string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		got := described(t, p, obj, kind)
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || strings.HasPrefix(g, w)
			}
			if !found {
				return fmt.Errorf("%s %s/%s: no Event %q in %q", kind, obj.GetNamespace(), obj.GetName(), w, got)
			}
		}
		return nil
	})
}

// TestEventsTellTheStory follows one Subscription from both sides over real HTTP and
// checks that `kubectl describe` of each object tells what happened: the Follow, the
// Accept, a publish, the host becoming unreachable and back, the Undo, and a Follow a
// FederationPolicy refused.
func TestEventsTellTheStory(t *testing.T) {
	// Not parallel: "one Event per report interval" below bounds the Events by the number of
	// intervals 220 sequential requests take, which grows when parallel tests share the CPU
	// (12 Events at -parallel 8 on 2 cores).
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	alphaID := p.alpha.base() + "/actors/releases"
	betaID := p.beta.base() + "/actors/watcher"

	p.follow(t, p.beta, "watch-releases", "watcher", alphaID)
	out := p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)
	in := p.inbound(t, "alpha", "releases", betaID, fedv1.PhaseAccepted)
	tells(t, p, out, "Subscription", "Normal FollowSent: Follow sent to "+p.alpha.base(), "Normal Accepted: "+alphaID+" accepted the follow")
	tells(t, p, in, "Subscription", "Normal FollowReceived: Follow ", "Normal Accepted: Accept sent to "+p.beta.base())

	// A post through the owner's outbox is published to the one follower.
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "releases-outbox-token"},
		StringData: map[string]string{"token": "owner-token"}}))
	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/actors/releases/outbox",
			bytes.NewReader([]byte(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Note","content":"v1.0 is out","to":["https://www.w3.org/ns/activitystreams#Public"]}`)))
		req.Host = alphaHost
		req.Header.Set("Content-Type", "application/activity+json")
		req.Header.Set("Authorization", "Bearer owner-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("outbox POST: %d", resp.StatusCode)
		}
		return nil
	})
	var actor fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, client.ObjectKey{Namespace: "alpha", Name: "releases"}, &actor))
	tells(t, p, &actor, "FederatedActor", "Normal Published: Published 1 activities from the outbox to 1 follower inboxes")

	// beta's host is marked unavailable after failures on 7 distinct days, then heard
	// from again: alpha's Subscription tells both.
	st, err := store.Open(ctx, p.alpha.dsn) // the instance's own SQLite file (WAL: shared)
	must(t, err)
	day := time.Now().Add(time.Hour)
	for i := range 7 {
		_, err := st.RecordHostFailure(ctx, betaHost, day.Add(time.Duration(i)*24*time.Hour), 7)
		must(t, err)
	}
	tells(t, p, in, "Subscription", "Warning HostUnreachable: deliveries to "+betaHost+" failed on 7 distinct days")
	must(t, st.RecordHostSuccess(ctx, betaHost, day.Add(8*24*time.Hour)))
	tells(t, p, in, "Subscription", "Normal HostReachable: "+betaHost+" answers deliveries again")
	must(t, st.Close())

	// The follower leaves: beta sends Undo, alpha deletes its Subscription; the Events
	// stay readable by the deleted object's uid.
	must(t, p.k8s.Delete(ctx, out))
	p.gone(t, "alpha", func(s fedv1.Subscription) bool { return s.UID == in.UID })
	tells(t, p, out, "Subscription", "Normal Undone: Undo of the Follow sent to "+p.alpha.base())
	tells(t, p, in, "Subscription", "Normal Undone: "+betaID+" undid the follow")

	// A denylist refuses the next Follow: beta's Subscription tells it was rejected,
	// alpha's actor (no Subscription is made) names the policy, and the policy reports
	// its refusals.
	pol := &fedv1.FederationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-beta"},
		Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{betaHost}},
	}
	must(t, p.k8s.Create(ctx, pol))
	p.enforced(t, "alpha", "deny-beta")
	p.follow(t, p.beta, "denied", "watcher", alphaID)
	denied := p.phase(t, "beta", "denied", fedv1.PhaseRejected)
	tells(t, p, denied, "Subscription", "Warning Rejected: "+alphaID+" rejected the follow")
	tells(t, p, &actor, "FederatedActor", "Warning Rejected: Follow from "+betaID+" rejected (PolicyDenied) by FederationPolicy deny-beta")
	tells(t, p, pol, "FederationPolicy", "Warning Refused: refused 0 requests, 1 follows and 0 deliveries since the last report")

	// A flood from the refused host. 200 requests: all counted in status.refused, and
	// reported in one Event per report interval with that interval's counts, not one per
	// request. 20 signed Follows: each answered with a Reject, and one Event object on the
	// actor whose series counts the repeats.
	for i := range 200 {
		body := []byte(fmt.Sprintf(`{"id":"%s/notes/%d","type":"Create","actor":%q,"object":{"id":"%s/notes/%d/o","type":"Note","content":"spam"}}`, p.beta.base(), i, betaID, p.beta.base(), i))
		if code, _ := post(t, p.alpha, "/inbox", body, "application/activity+json", nil); code != http.StatusForbidden {
			t.Fatalf("request %d from the refused host: %d, want 403", i, code)
		}
	}
	key := actorKey(t, p, "beta", "watcher")
	for i := range 20 {
		body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/follows/flood-%d","type":"Follow","actor":%q,"object":%q}`, p.beta.base(), i, betaID, alphaID))
		if code, msg := post(t, p.alpha, "/inbox", body, "application/activity+json", signer(t, body, key, betaID+"#main-key", time.Now())); code != http.StatusAccepted {
			t.Fatalf("refused Follow %d: %d %s, want 202 (answered with a Reject)", i, code, msg)
		}
	}
	var reports []string
	eventually(t, 30*time.Second, func() error {
		must(t, p.k8s.Get(ctx, client.ObjectKeyFromObject(pol), pol))
		if pol.Status.Refused.Requests != 200 || pol.Status.Refused.Follows != 21 {
			return fmt.Errorf("status.refused = %+v, want 200 requests and 21 follows", pol.Status.Refused)
		}
		reports = described(t, p, pol, "FederationPolicy")
		requests, follows := 0, 0
		for _, r := range reports {
			var n, m, d int
			if _, err := fmt.Sscanf(r, "Warning Refused: refused %d requests, %d follows and %d deliveries", &n, &m, &d); err != nil {
				return fmt.Errorf("policy Event %q: %v", r, err)
			}
			requests, follows = requests+n, follows+m
		}
		if requests != 200 || follows != 21 {
			return fmt.Errorf("the policy's Events report %d requests and %d follows, want 200 and 21: %q", requests, follows, reports)
		}
		return nil
	})
	if len(reports) > 10 {
		t.Errorf("%d policy Events for 200 requests and 21 follows; want one per report interval", len(reports))
	}
	var evs corev1.EventList
	eventually(t, 30*time.Second, func() error {
		must(t, p.k8s.List(ctx, &evs, client.InNamespace("alpha"), client.MatchingFields{
			"involvedObject.kind": "FederatedActor", "involvedObject.uid": string(actor.UID), "reason": fedv1.EventRejected}))
		if len(evs.Items) != 1 || evs.Items[0].Series == nil || evs.Items[0].Series.Count < 2 {
			return fmt.Errorf("%d Rejected Event objects on the actor after 21 refused Follows, want 1 with a series: %q", len(evs.Items), described(t, p, &actor, "FederatedActor"))
		}
		return nil
	})
	t.Logf("after 200 refused requests and 21 refused Follows: %d policy Events (%q), %d actor Event (series count %d)",
		len(reports), reports, len(evs.Items), evs.Items[0].Series.Count)
}
