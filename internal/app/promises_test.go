package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// TestPolicyPromises checks, with two real instances, what docs and the API promise of
// FederationPolicy: the follower and per-host limits answer a Follow with a Reject, the
// per-host request rate answers 429 with Retry-After, an allowlist and a Mastodon-format
// blocklist ConfigMap refuse a host at the inbox, and the refusals are counted in the
// policy's status; and that approved: false on a Subscription awaiting approval sends a
// Reject and removes it.
func TestPolicyPromises(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.alpha, "docs", "docs", false)
	p.actor(t, p.alpha, "gated", "gated", true)
	for _, n := range []string{"w1", "w2", "w3", "w4"} {
		p.actor(t, p.beta, n, n, false)
	}
	alpha := func(u string) string { return p.alpha.base() + "/actors/" + u }
	policy := func(name string, spec fedv1.FederationPolicySpec) *fedv1.FederationPolicy {
		spec.TargetRef = fedv1.LocalObjectReference{Name: "forge"}
		pol := &fedv1.FederationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: name}, Spec: spec}
		must(t, p.k8s.Create(ctx, pol))
		p.enforced(t, "alpha", name)
		return pol
	}
	remove := func(pol *fedv1.FederationPolicy) {
		must(t, p.k8s.Delete(ctx, pol))
		eventually(t, 30*time.Second, func() error {
			err := p.k8s.Get(ctx, client.ObjectKeyFromObject(pol), &fedv1.FederationPolicy{})
			if client.IgnoreNotFound(err) != nil || err == nil {
				return fmt.Errorf("policy %s still there: %v", pol.Name, err)
			}
			return nil
		})
	}
	refused := func(name string, check func(fedv1.RefusedCounts) error) {
		t.Helper()
		// Counts are flushed to the status once a minute.
		eventually(t, 90*time.Second, func() error {
			var pol fedv1.FederationPolicy
			if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: name}, &pol); err != nil {
				return err
			}
			return check(pol.Status.Refused)
		})
	}

	t.Run("maxFollowersPerActor rejects the follower over the limit", func(t *testing.T) {
		pol := policy("one-follower", fedv1.FederationPolicySpec{Mode: fedv1.PolicyDenylist, Hosts: []string{"nobody.invalid"},
			Limits: &fedv1.PolicyLimits{MaxFollowersPerActor: ptr.To[int32](1)}})
		p.follow(t, p.beta, "w1-releases", "w1", alpha("releases"))
		p.phase(t, "beta", "w1-releases", fedv1.PhaseAccepted)
		p.follow(t, p.beta, "w2-releases", "w2", alpha("releases"))
		p.phase(t, "beta", "w2-releases", fedv1.PhaseRejected)
		p.gone(t, "alpha", func(s fedv1.Subscription) bool {
			return s.Spec.ActorRef.Name == "releases" && strings.HasSuffix(s.Spec.RemoteActor, "/w2")
		})
		refused(pol.Name, func(c fedv1.RefusedCounts) error {
			if c.Follows < 1 || c.LastRefusedAt == nil {
				return fmt.Errorf("refused %+v, want a follow counted", c)
			}
			return nil
		})
		remove(pol)
	})

	t.Run("maxSubscriptionsPerHost rejects a follow from a host over the limit", func(t *testing.T) {
		// beta already holds one Subscription on alpha (w1 follows releases).
		pol := policy("one-per-host", fedv1.FederationPolicySpec{Mode: fedv1.PolicyDenylist, Hosts: []string{"nobody.invalid"},
			Limits: &fedv1.PolicyLimits{MaxSubscriptionsPerHost: ptr.To[int32](1)}})
		p.follow(t, p.beta, "w3-docs", "w3", alpha("docs"))
		p.phase(t, "beta", "w3-docs", fedv1.PhaseRejected)
		refused(pol.Name, func(c fedv1.RefusedCounts) error {
			if c.Follows < 1 {
				return fmt.Errorf("refused %+v, want a follow counted", c)
			}
			return nil
		})
		remove(pol)
	})

	const ct = "application/activity+json"
	note := func(n int) []byte {
		actor := p.beta.base() + "/actors/w4"
		return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/notes/%d","type":"Create","actor":%q,"object":{"id":"%s/notes/%d/o","type":"Note","content":"x"}}`, actor, n, actor, actor, n))
	}
	t.Run("requestsPerMinutePerHost answers 429 with Retry-After", func(t *testing.T) {
		pol := policy("slow", fedv1.FederationPolicySpec{Mode: fedv1.PolicyDenylist, Hosts: []string{"nobody.invalid"},
			Limits: &fedv1.PolicyLimits{RequestsPerMinutePerHost: ptr.To[int32](3)}})
		var codes []int
		limited := 0
		for i := range 8 {
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/inbox", strings.NewReader(string(note(i))))
			req.Host = p.alpha.host
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			}
		}
		// Unsigned, so those let through are 401; at most 3 (the burst) are let through.
		if limited < 5 || codes[0] != http.StatusUnauthorized {
			t.Errorf("statuses %v: want the first 3 refused for the missing signature (401), then 429", codes)
		}
		refused(pol.Name, func(c fedv1.RefusedCounts) error {
			if c.Requests < int64(limited) {
				return fmt.Errorf("refused %+v, want %d requests counted", c, limited)
			}
			return nil
		})
		remove(pol)
	})

	t.Run("an allowlist refuses every other host at the inbox", func(t *testing.T) {
		pol := policy("only-gamma", fedv1.FederationPolicySpec{Mode: fedv1.PolicyAllowlist, Hosts: []string{"gamma.fedforge.test"}})
		if code, body := post(t, p.alpha, "/inbox", note(100), ct, nil); code != http.StatusForbidden {
			t.Errorf("POST from a host outside the allowlist: %d %s, want 403", code, body)
		}
		refused(pol.Name, func(c fedv1.RefusedCounts) error {
			if c.Requests < 1 {
				return fmt.Errorf("refused %+v, want a request counted", c)
			}
			return nil
		})
		remove(pol)
	})

	t.Run("a Mastodon blocklist ConfigMap refuses suspended hosts at the inbox", func(t *testing.T) {
		must(t, p.k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "mastodon-blocks"},
			Data: map[string]string{"blocklist.csv": "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n" +
				"silenced.example,silence,false,false,,false\n" + betaHost + ",suspend,true,true,spam,false\n"}}))
		pol := policy("blocklist", fedv1.FederationPolicySpec{Mode: fedv1.PolicyDenylist, BlocklistRef: &fedv1.ConfigMapKeyReference{Name: "mastodon-blocks", Key: "blocklist.csv"}})
		eventually(t, 30*time.Second, func() error {
			if code, body := post(t, p.alpha, "/inbox", note(200), ct, nil); code != http.StatusForbidden {
				return fmt.Errorf("POST from a suspended host: %d %s, want 403", code, body)
			}
			return nil
		})
		// A follow from the suspended host is answered with a Reject.
		p.follow(t, p.beta, "w4-docs", "w4", alpha("docs"))
		p.phase(t, "beta", "w4-docs", fedv1.PhaseRejected)
		refused(pol.Name, func(c fedv1.RefusedCounts) error {
			if c.Requests < 1 || c.Follows < 1 {
				return fmt.Errorf("refused %+v, want a request and a follow counted", c)
			}
			return nil
		})
		remove(pol)
	})

	t.Run("approved false sends a Reject and removes the Subscription", func(t *testing.T) {
		p.follow(t, p.beta, "w2-gated", "w2", alpha("gated"))
		p.phase(t, "beta", "w2-gated", fedv1.PhasePending)
		in := p.inbound(t, "alpha", "gated", p.beta.base()+"/actors/w2", fedv1.PhaseAwaitingApproval)
		base := in.DeepCopy()
		in.Spec.Approved = ptr.To(false)
		must(t, p.k8s.Patch(ctx, in, client.MergeFrom(base)))
		p.phase(t, "beta", "w2-gated", fedv1.PhaseRejected)
		p.gone(t, "alpha", func(s fedv1.Subscription) bool { return s.Name == in.Name })
	})
}
