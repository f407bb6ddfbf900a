package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// sourcePayload reads a real forge payload kept in internal/forge/testdata (its README says
// where each came from).
func sourcePayload(t *testing.T, path string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "forge", "testdata", path))
	must(t, err)
	return b
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// received waits until the follower's instance has stored a Create of a Note from
// alpha/releases matching contains, and returns it.
func received(t *testing.T, dsn, localActor, contains string) store.Received {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	must(t, err)
	defer st.Close()
	var found store.Received
	eventually(t, 60*time.Second, func() error {
		page, err := st.ListReceived(context.Background(), localActor, "", 100)
		if err != nil {
			return err
		}
		for _, r := range page.Items {
			if r.Type == "Create" && bytes.Contains(r.Raw, []byte(contains)) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("no Create containing %q among %d received activities", contains, len(page.Items))
	})
	return found
}

// TestForgeEventsReachFollowers: a GitLab, a Gitea and a GitHub release webhook and a
// release feed, each into a real instance, reach a follower on another instance as a
// signed Create{Note} (the follower's inbox verified it, or it would not be stored).
func TestForgeEventsReachFollowers(t *testing.T) {
	t.Parallel()
	// A feed on loopback: the GitHub releases Atom feed kept in internal/forge/testdata.
	atom := sourcePayload(t, "feeds/github_releases.atom")
	ln, err := net.Listen("tcp", "127.0.0.6:0")
	must(t, err)
	feedSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/atom+xml")
		_, _ = w.Write(atom)
	})}
	go func() { _ = feedSrv.Serve(ln) }()
	t.Cleanup(func() { _ = feedSrv.Close() })

	p := newPair(t)
	ctx := context.Background()
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "hooks"},
		StringData: map[string]string{"gitlab": "gl-token", "gitea": "gitea-secret", "github": "gh-secret"}}))
	p.actor(t, p.alpha, "releases", "releases", false)
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a))
	patch := client.MergeFrom(a.DeepCopy())
	a.Spec.Sources = []fedv1.EventSource{
		{Name: "gitlab", Type: fedv1.SourceGitLab, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "gitlab"}},
		{Name: "gitea", Type: fedv1.SourceGitea, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "gitea"}},
		{Name: "github", Type: fedv1.SourceGitHub, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "github"}},
	}
	must(t, p.k8s.Patch(ctx, &a, patch))
	p.actor(t, p.beta, "watcher", "watcher", false)
	// alpha has announced its actor's document to no one (it has no followers yet), so
	// that beta, who reads the document when following, is not sent it; see the subtest
	// "the first follower is not sent an Update".
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })
	eventually(t, 30*time.Second, func() error {
		var n int
		if err := alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities WHERE type = 'Update'`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("alpha has not announced its actor's document yet")
		}
		return nil
	})
	// alpha's Subscription status writes are held back while the follow is answered and
	// the first releases published: a follower that holds alpha's Accept must be in
	// alpha's next fan-out, however late alpha's cache learns of it (publishing reads
	// followers from the cache; the Accept waits for it).
	p.alphaWrites.statusDelay.Store(int64(500 * time.Millisecond))
	p.follow(t, p.beta, "watch-releases", "watcher", "acct:releases@"+alphaHost)
	p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)
	// The feed source comes once the follower is there: its first poll publishes at once,
	// and an activity published before a follow is not sent to that follower.
	must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a))
	patch = client.MergeFrom(a.DeepCopy())
	a.Spec.Sources = append(a.Spec.Sources, fedv1.EventSource{Name: "feed", Type: fedv1.SourceFeed,
		Feed: &fedv1.FeedSource{URL: "http://" + ln.Addr().String() + "/releases.atom", Interval: &metav1.Duration{Duration: time.Minute}}})
	must(t, p.k8s.Patch(ctx, &a, patch))
	watcher := p.beta.base() + "/actors/watcher"

	hook := func(source string, body []byte, headers map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/hooks/releases/"+source, bytes.NewReader(body))
		req.Host = alphaHost
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	gitlab := sourcePayload(t, "gitlab/release.json")
	if c := hook("gitlab", gitlab, map[string]string{"X-Gitlab-Event": "Release Hook", "X-Gitlab-Token": "wrong"}); c != http.StatusUnauthorized {
		t.Errorf("GitLab hook with a wrong token: %d, want 401", c)
	}
	tests := map[string]struct {
		source  string
		payload string
		headers func(body []byte) map[string]string
	}{
		"GitLab": {"gitlab", "gitlab/release.json", func([]byte) map[string]string {
			return map[string]string{"X-Gitlab-Event": "Release Hook", "X-Gitlab-Token": "gl-token"}
		}},
		"Gitea": {"gitea", "gitea/release_published.json", func(b []byte) map[string]string {
			return map[string]string{"X-Gitea-Event": "release", "X-Gitea-Signature": hmacHex("gitea-secret", b)}
		}},
		"GitHub": {"github", "github/release_published.json", func(b []byte) map[string]string {
			return map[string]string{"X-GitHub-Event": "release", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", b)}
		}},
	}
	for name, tc := range tests {
		t.Run(name+" release webhook", func(t *testing.T) {
			body := sourcePayload(t, tc.payload)
			if c := hook(tc.source, body, tc.headers(body)); c != http.StatusAccepted {
				t.Fatalf("hook: %d, want 202", c)
			}
			var payload struct {
				URL     string `json:"url"`
				Release struct {
					HTMLURL string `json:"html_url"`
				} `json:"release"`
			}
			_ = json.Unmarshal(body, &payload)
			link := payload.URL + payload.Release.HTMLURL // the release page the Note links to
			if link == "" {
				t.Fatalf("no release URL in %s", tc.payload)
			}
			r := received(t, p.beta.dsn, watcher, link)
			doc, err := activitypub.DecodeObject(r.Raw)
			must(t, err)
			if note := doc.Object.Object; note == nil || !note.Type.Has("Note") || note.Content == "" {
				t.Errorf("received %s, want a Create of a Note with content", r.Raw)
			}
			// Forges retry: the same delivery again publishes nothing new.
			if c := hook(tc.source, body, tc.headers(body)); c != http.StatusAccepted {
				t.Errorf("repeated hook: %d", c)
			}
		})
	}
	p.alphaWrites.statusDelay.Store(0)
	t.Run("the first follower is not sent an Update of the document it read when following", func(t *testing.T) {
		// The actor's document has not changed since beta followed. No store API lists
		// deliveries by activity type, so this reads alpha's SQLite tables directly.
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM deliveries d JOIN activities a ON a.id = d.activity_id WHERE a.type = 'Update'`).Scan(&n))
		if n != 0 {
			t.Errorf("alpha queued %d deliveries of an Update", n)
		}
	})
	t.Run("the follower's owner reads its inbox with the outbox token", func(t *testing.T) {
		must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "beta", Name: "watcher-outbox-token"},
			StringData: map[string]string{"token": "owner-token"}}))
		read := func(token string) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.beta.listen+"/actors/watcher/inbox", nil)
			req.Host = betaHost
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			return resp.StatusCode, b.String()
		}
		if c, _ := read(""); c != http.StatusUnauthorized {
			t.Errorf("inbox without a token: %d, want 401", c)
		}
		if c, _ := read("wrong"); c != http.StatusUnauthorized {
			t.Errorf("inbox with a wrong token: %d, want 401", c)
		}
		c, body := read("owner-token")
		if c != http.StatusOK || !strings.Contains(body, `"type":"Create"`) {
			t.Errorf("inbox with the owner's token: %d %.300s", c, body)
		}
	})
	t.Run("fedforge deliver reaches the queue through the internal endpoint with the token only", func(t *testing.T) {
		var sec corev1.Secret
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases-keys"}, &sec))
		dir := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(dir, "releases"), 0o700))
		for k, v := range sec.Data {
			must(t, os.WriteFile(filepath.Join(dir, "releases", k), v, 0o600))
		}
		o := DeliverOptions{QueueURL: "http://" + p.alpha.internal + "/internal/delivery", Token: "wrong", KeysDir: dir,
			Actors: []string{p.alpha.base() + "/actors/releases=releases"}, AllowedCIDRs: []string{"127.0.0.0/8"}, AllowHTTP: true,
			Resolve: []string{alphaHost + "=" + p.alpha.listen, betaHost + "=" + p.beta.listen}, MaxDuration: 20 * time.Second}
		if err := RunDeliver(ctx, o); err == nil {
			t.Error("a Job with a wrong token drained the queue")
		}
		o.Token = deliveryToken
		if err := RunDeliver(ctx, o); err != nil {
			t.Errorf("a Job with the token: %v", err)
		}
		// The public listener does not serve the queue.
		resp, err := http.Post("http://"+p.alpha.listen+"/internal/delivery/lease", "application/json", strings.NewReader("{}"))
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("the public listener answered the queue endpoint with %d", resp.StatusCode)
		}
	})
	t.Run("publishing to many followers costs no API-server writes", func(t *testing.T) {
		// 200 more accepted followers on beta's host (its shared inbox takes them all).
		for i := range 200 {
			remote := fmt.Sprintf("%s/actors/fan%d", p.beta.base(), i)
			s := &fedv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: fmt.Sprintf("fan-%d", i)},
				Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionInbound, ActorRef: fedv1.LocalObjectReference{Name: "releases"}, RemoteActor: remote}}
			must(t, p.k8s.Create(ctx, s))
			base := s.DeepCopy()
			s.Status = fedv1.SubscriptionStatus{Phase: fedv1.PhaseAccepted, RemoteActorID: remote, RemoteHost: betaHost,
				RemoteInbox: remote + "/inbox", RemoteSharedInbox: p.beta.base() + "/inbox", FollowActivityID: remote + "/follow"}
			must(t, p.k8s.Status().Patch(ctx, s, client.MergeFrom(base)))
		}
		eventually(t, 30*time.Second, func() error {
			if c := getAS2(t, p.alpha, "/actors/releases/followers"); c["totalItems"] != float64(201) {
				return fmt.Errorf("followers %v", c["totalItems"])
			}
			return nil
		})
		time.Sleep(2 * time.Second) // let the exchanges settle (they may answer the new Subscriptions)
		_, mark := p.alphaWrites.since(0)
		if mark == 0 {
			t.Fatal("no API-server write of alpha's server was counted: the counter is not wired")
		}
		// A push (a tag is not published by a source that publishes releases).
		body := sourcePayload(t, "gitlab/push.json")
		if c := hook("gitlab", body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-token"}); c != http.StatusAccepted {
			t.Fatalf("push hook: %d", c)
		}
		time.Sleep(2 * time.Second) // the fan-out is delivered meanwhile
		// Background work that runs whether or not anything is published is left out:
		// the periodic status report, and the reconciliation of the 200 Subscriptions just
		// made (their actors do not exist on beta).
		paths, _ := p.alphaWrites.since(mark)
		var caused []string
		for _, w := range paths {
			if strings.Contains(w, "/federationservers/") || strings.Contains(w, "/subscriptions/fan-") {
				continue
			}
			caused = append(caused, w)
		}
		if len(caused) > 5 {
			t.Errorf("publishing one activity to 201 followers made %d API-server writes, want at most 5: %v", len(caused), caused)
		} else {
			t.Logf("API-server writes for one activity to 201 followers: %d %v (background writes in the window: %d)", len(caused), caused, len(paths)-len(caused))
		}
	})
	t.Run("a follower on a host refused since it followed gets nothing more", func(t *testing.T) {
		pol := &fedv1.FederationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-beta"},
			Spec: fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{betaHost}}}
		must(t, p.k8s.Create(ctx, pol))
		defer func() { must(t, p.k8s.Delete(ctx, pol)) }()
		time.Sleep(time.Second) // the server's cache sees the policy
		st, err := store.Open(ctx, p.beta.dsn)
		must(t, err)
		defer st.Close()
		count := func() int {
			page, err := st.ListReceived(ctx, watcher, "", 500)
			must(t, err)
			return len(page.Items)
		}
		before := count()
		published := getAS2(t, p.alpha, "/actors/releases/outbox")["totalItems"].(float64)
		body := sourcePayload(t, "gitlab/issue.json")
		if c := hook("gitlab", body, map[string]string{"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": "gl-token"}); c != http.StatusAccepted {
			t.Fatalf("issue hook: %d", c)
		}
		time.Sleep(3 * time.Second)
		eventually(t, 30*time.Second, func() error { // the webhook's queue publishes after the answer
			if now := getAS2(t, p.alpha, "/actors/releases/outbox")["totalItems"].(float64); now != published+1 {
				return fmt.Errorf("the issue was not published (outbox %v -> %v)", published, now)
			}
			return nil
		})
		if n := count(); n != before {
			t.Errorf("the refused follower received %d new activities", n-before)
		}
	})
	t.Run("feed entry", func(t *testing.T) {
		title := atomFirstTitle(t, atom)
		if title == "" {
			t.Fatal("empty title")
		}
		received(t, p.beta.dsn, watcher, title)
	})
}

// atomFirstTitle returns the first entry's title of an Atom feed (crudely: enough for a
// fixed test feed).
func atomFirstTitle(t *testing.T, atom []byte) string {
	s := string(atom)
	i := strings.Index(s, "<entry>")
	if i < 0 {
		t.Fatal("no entry in the feed")
	}
	s = s[i:]
	j, k := strings.Index(s, "<title>"), strings.Index(s, "</title>")
	if j < 0 || k < j {
		t.Fatal("no title in the first entry")
	}
	return s[j+len("<title>") : k]
}
