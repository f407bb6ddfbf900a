package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/version"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

const (
	testNS   = "fedforge-test"
	testHost = "forge.fedforge.test"
	testBase = "http://" + testHost
)

// fixture is one real kube-apiserver with a FederationServer, its actors and key
// Secrets, and the real Server's cache and handler behind an httptest server.
type fixture struct {
	k8s  client.Client
	http *httptest.Server
	keys *keys.Pair
	srv  *Server
}

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fedv1.AddToScheme(s))
	return s
}

// assetsDir finds etcd and kube-apiserver: KUBEBUILDER_ASSETS, or hack/envtest-binaries.sh.
func assetsDir(t *testing.T) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", "envtest-binaries.sh")).Output()
	if err != nil {
		t.Fatalf("envtest binaries: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// startAPIServer starts a real kube-apiserver and etcd with the CRDs, stopped at the
// test's end, and creates the test namespace in it; withServer also creates the
// FederationServer "main" (testHost, plain HTTP). ctx ends with the test.
func startAPIServer(t *testing.T, withServer bool) (*rest.Config, client.Client, *runtime.Scheme, context.Context) {
	t.Helper()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir(t),
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := testScheme()
	k, err := client.New(cfg, client.Options{Scheme: scheme})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	must(t, k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}))
	if withServer {
		must(t, k.Create(ctx, &fedv1.FederationServer{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "main"},
			Spec: fedv1.FederationServerSpec{Host: testHost, Scheme: fedv1.SchemeHTTP}}))
	}
	return cfg, k, scheme, ctx
}

// serveInboxOn runs a Server for the FederationServer "main" on st until the test ends,
// with actor's public key pem already known (as after a first fetch, so that no peer has
// to serve it), and returns it with an httptest server in front of its handler.
func serveInboxOn(t *testing.T, ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, st store.Store, actor, pem string) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := New(Options{Server: types.NamespacedName{Namespace: testNS, Name: "main"}, Config: cfg, Scheme: scheme, Store: st})
	must(t, err)
	sctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go func() { _ = srv.Run(sctx, nil) }()
	if !srv.cache.WaitForCacheSync(sctx) {
		t.Fatal("cache did not sync")
	}
	must(t, srv.fed.keyStore.PutKey(ctx, &activitypub.StoredKey{KeyID: actor + "#main-key", Owner: actor, PEM: pem,
		FetchedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, k, scheme, ctx := startAPIServer(t, false)

	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "fedforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv, err := New(Options{Server: types.NamespacedName{Namespace: testNS, Name: "main"}, Config: cfg, Scheme: scheme, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Run(ctx, nil) }()
	if !srv.cache.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	pair, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{k8s: k, http: hs, keys: pair, srv: srv}
	f.populate(ctx, t)
	return f
}

// populate creates two servers, actors of both, and key Secrets (one unlabelled, which the
// server's cache must not see).
func (f *fixture) populate(ctx context.Context, t *testing.T) {
	for name, host := range map[string]string{"main": testHost, "other": "other." + testHost} {
		must(t, f.k8s.Create(ctx, &fedv1.FederationServer{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
			Spec:       fedv1.FederationServerSpec{Host: host, Scheme: fedv1.SchemeHTTP},
		}))
	}

	data, err := f.keys.Data()
	must(t, err)
	managed := map[string]string{fedv1.LabelManagedBy: fedv1.ManagedByValue}
	must(t, f.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "repo-keys", Labels: managed}, Data: data}))
	must(t, f.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "unlabelled-keys"}, Data: data}))
	must(t, f.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "page-keys", Labels: managed}, Data: data}))

	f.actor(ctx, t, "repo", "main", fedv1.FederatedActorSpec{
		Type: fedv1.ActorRepository, PreferredUsername: "releases-group-project",
		Name: "Group / Project", Summary: "Releases of <group/project> & friends\nsecond line",
		Icon:                      &fedv1.ActorIcon{URL: "https://cdn.example/icon.png", MediaType: "image/png"},
		ManuallyApprovesFollowers: true,
	}, "repo-keys")
	f.actor(ctx, t, "page", "main", fedv1.FederatedActorSpec{
		PreferredUsername: "with-page", URL: "https://forge.example/group/project",
	}, "page-keys")
	f.actor(ctx, t, "nokeys", "main", fedv1.FederatedActorSpec{PreferredUsername: "pending"}, "")
	f.actor(ctx, t, "hidden", "main", fedv1.FederatedActorSpec{PreferredUsername: "unlabelled"}, "unlabelled-keys")
	f.actor(ctx, t, "elsewhere", "other", fedv1.FederatedActorSpec{PreferredUsername: "elsewhere"}, "repo-keys")
	// An actor being deleted (held by a finalizer) is no longer served.
	f.actor(ctx, t, "leaving", "main", fedv1.FederatedActorSpec{PreferredUsername: "leaving"}, "repo-keys", "fedforge.test/hold")
	var leaving fedv1.FederatedActor
	must(t, f.k8s.Get(ctx, types.NamespacedName{Namespace: testNS, Name: "leaving"}, &leaving))
	must(t, f.k8s.Delete(ctx, &leaving))

	// Wait until the cache has seen everything.
	eventually(t, func() error {
		resp, body := f.get(t, "/.well-known/webfinger?resource=acct:with-page@"+testHost, "")
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("webfinger %d %s", resp.StatusCode, body)
		}
		if resp, _ := f.get(t, "/actors/leaving", activitypub.AcceptActivity); resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("leaving actor still served: %d", resp.StatusCode)
		}
		return nil
	})
}

func (f *fixture) actor(ctx context.Context, t *testing.T, name, server string, spec fedv1.FederatedActorSpec, secret string, finalizers ...string) {
	t.Helper()
	spec.ServerRef = fedv1.LocalObjectReference{Name: server}
	a := &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Finalizers: finalizers}, Spec: spec}
	must(t, f.k8s.Create(ctx, a))
	if secret != "" {
		base := a.DeepCopy()
		a.Status.KeySecretName = secret
		must(t, f.k8s.Status().Patch(ctx, a, client.MergeFrom(base)))
	}
}

func (f *fixture) get(t *testing.T, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	must(t, err)
	req.Host = testHost
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, body
}

func TestServer(t *testing.T) {
	f := newFixture(t)
	const acct = "acct:releases-group-project@" + testHost
	const actorID = testBase + "/actors/releases-group-project"

	t.Run("webfinger round trip as Mastodon does it", func(t *testing.T) {
		resp, body := f.get(t, "/.well-known/webfinger?resource="+url.QueryEscape(acct), "application/jrd+json")
		wantStatus(t, resp, body, http.StatusOK)
		jrd, err := activitypub.DecodeJRD(body)
		must(t, err)
		if jrd.Subject != acct || jrd.SelfLink() != actorID {
			t.Fatalf("JRD subject %q self %q", jrd.Subject, jrd.SelfLink())
		}
		golden(t, "webfinger.json", body, nil)

		path := strings.TrimPrefix(jrd.SelfLink(), testBase)
		resp, body = f.get(t, path, activitypub.AcceptActivity)
		wantStatus(t, resp, body, http.StatusOK)
		var doc struct {
			ID                string `json:"id"`
			PreferredUsername string `json:"preferredUsername"`
		}
		must(t, json.Unmarshal(body, &doc))
		if back := "acct:" + doc.PreferredUsername + "@" + testHost; back != acct || doc.ID != actorID {
			t.Fatalf("actor maps back to %q (id %q), want %q", back, doc.ID, acct)
		}

		// The actor URL and a differently cased acct resolve to the same subject.
		for _, res := range []string{actorID, "acct:Releases-Group-Project@" + testHost, "releases-group-project@" + testHost} {
			resp, body := f.get(t, "/.well-known/webfinger?resource="+url.QueryEscape(res), "")
			wantStatus(t, resp, body, http.StatusOK)
			j, err := activitypub.DecodeJRD(body)
			must(t, err)
			if j.Subject != acct || j.SelfLink() != actorID {
				t.Errorf("%s: subject %q self %q", res, j.Subject, j.SelfLink())
			}
		}
	})

	t.Run("webfinger refusals", func(t *testing.T) {
		for res, want := range map[string]int{
			"acct:nobody@" + testHost:                                http.StatusNotFound,
			"acct:releases-group-project@elsewhere.x":                http.StatusNotFound,
			"acct:elsewhere@" + testHost:                             http.StatusNotFound, // another server's actor
			"acct:leaving@" + testHost:                               http.StatusNotFound, // being deleted
			"https://" + testHost + "/actors/releases-group-project": http.StatusNotFound, // wrong scheme
			testBase + "/actors/nobody":                              http.StatusNotFound,
			testBase + "/inbox":                                      http.StatusNotFound,
			"acct:nohost":                                            http.StatusBadRequest,
			"acct:a/b@" + testHost:                                   http.StatusBadRequest,
		} {
			resp, body := f.get(t, "/.well-known/webfinger?resource="+url.QueryEscape(res), "")
			if resp.StatusCode != want {
				t.Errorf("%s: %d %s, want %d", res, resp.StatusCode, body, want)
			}
		}
		if resp, body := f.get(t, "/.well-known/webfinger", ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("no resource: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("actor document is followable from Mastodon", func(t *testing.T) {
		for _, accept := range []string{"application/activity+json", `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`, activitypub.AcceptActivity} {
			resp, body := f.get(t, "/actors/releases-group-project", accept)
			wantStatus(t, resp, body, http.StatusOK)
			if ct := resp.Header.Get("Content-Type"); ct != "application/activity+json" {
				t.Errorf("Accept %s: Content-Type %q", accept, ct)
			}
			if v := resp.Header.Get("Vary"); v != "Accept" {
				t.Errorf("Vary %q", v)
			}
			if err := activitypub.CheckMastodonActor(body, actorID); err != nil {
				t.Fatalf("Mastodon would refuse the actor: %v\n%s", err, body)
			}
		}
		_, body := f.get(t, "/actors/releases-group-project", activitypub.AcceptActivity)
		var doc map[string]any
		must(t, json.Unmarshal(body, &doc))
		if got := fmt.Sprint(doc["type"]); got != "[Repository Service]" {
			t.Errorf("type %s", got)
		}
		pk := doc["publicKey"].(map[string]any)
		if pk["id"] != actorID+"#main-key" || pk["owner"] != actorID {
			t.Errorf("publicKey %v", pk)
		}
		wantPEM, err := keys.EncodePublic(f.keys.RSA.Public())
		must(t, err)
		if pk["publicKeyPem"] != string(wantPEM) {
			t.Errorf("publicKeyPem differs from the Secret:\n%v\n%s", pk["publicKeyPem"], wantPEM)
		}
		am := doc["assertionMethod"].([]any)[0].(map[string]any)
		if want := activitypub.EncodeMultibaseEd25519(f.keys.Ed25519.Public().(ed25519.PublicKey)); am["publicKeyMultibase"] != want || am["id"] != actorID+"#ed25519-key" {
			t.Errorf("assertionMethod %v, want multibase %s", am, want)
		}
		var a fedv1.FederatedActor
		must(t, f.k8s.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: "repo"}, &a))
		if want := a.CreationTimestamp.UTC().Format(time.RFC3339); doc["published"] != want {
			t.Errorf("published %v, want %s", doc["published"], want)
		}
		golden(t, "actor-repository.json", body, func(m map[string]any) {
			m["published"] = "<published>"
			m["publicKey"].(map[string]any)["publicKeyPem"] = "<rsa.pub>"
			m["assertionMethod"].([]any)[0].(map[string]any)["publicKeyMultibase"] = "<ed25519>"
		})
	})

	t.Run("browsers get a profile page or a redirect", func(t *testing.T) {
		const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
		resp, body := f.get(t, "/actors/releases-group-project", browser)
		wantStatus(t, resp, body, http.StatusOK)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Vary") != "Accept" {
			t.Errorf("Content-Type %q Vary %q", ct, resp.Header.Get("Vary"))
		}
		page := string(body)
		if strings.Contains(page, "<group/project>") || !strings.Contains(page, "&lt;group/project&gt; &amp; friends") ||
			!strings.Contains(page, "@releases-group-project@"+testHost) {
			t.Errorf("profile page not escaped or incomplete:\n%s", page)
		}
		resp, body = f.get(t, "/actors/with-page", browser)
		wantStatus(t, resp, body, http.StatusFound)
		if loc := resp.Header.Get("Location"); loc != "https://forge.example/group/project" {
			t.Errorf("Location %q", loc)
		}
		// Clients that ask for nothing in particular get the document.
		for _, accept := range []string{"", "*/*", "application/json"} {
			resp, body := f.get(t, "/actors/with-page", accept)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/activity+json" {
				t.Errorf("Accept %q: %d %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if err := activitypub.CheckMastodonActor(body, testBase+"/actors/with-page"); err != nil {
				t.Errorf("with-page: %v", err)
			}
		}
	})

	t.Run("unknown, foreign, deleted and keyless actors", func(t *testing.T) {
		for _, name := range []string{"nobody", "elsewhere", "leaving", "Releases-Group-Project"} {
			resp, body := f.get(t, "/actors/"+name, activitypub.AcceptActivity)
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/activity+json" {
				t.Errorf("%s (AS2): %d %s %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			resp, body = f.get(t, "/actors/"+name, "text/html")
			if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("%s (HTML): %d %s %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
		// No key Secret yet, and a Secret outside the managed-by label (never cached).
		for _, name := range []string{"pending", "unlabelled"} {
			resp, body := f.get(t, "/actors/"+name, activitypub.AcceptActivity)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %d Retry-After %q %s", name, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		}
	})

	t.Run("nodeinfo and host-meta", func(t *testing.T) {
		resp, body := f.get(t, "/.well-known/nodeinfo", "")
		wantStatus(t, resp, body, http.StatusOK)
		for _, want := range []string{testBase + "/nodeinfo/2.0", testBase + "/nodeinfo/2.1"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("discovery lacks %s: %s", want, body)
			}
		}
		for _, v := range []string{"2.0", "2.1"} {
			resp, body := f.get(t, "/nodeinfo/"+v, "")
			wantStatus(t, resp, body, http.StatusOK)
			var ni activitypub.NodeInfo
			must(t, json.Unmarshal(body, &ni))
			// repo, with-page, pending, unlabelled: not the other server's, not the leaving one.
			if ni.Version != v || ni.Software.Name != "fedforge" || ni.Software.Version != version.Version || ni.Usage.Users.Total != 4 {
				t.Errorf("nodeinfo %s: %s", v, body)
			}
		}
		resp, body = f.get(t, "/.well-known/host-meta", "")
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(string(body), testBase+"/.well-known/webfinger?resource={uri}") {
			t.Errorf("host-meta: %s", body)
		}
		resp, body = f.get(t, "/.well-known/host-meta.json", "")
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(string(body), `"lrdd"`) {
			t.Errorf("host-meta.json: %s", body)
		}
	})
}

func TestWantsActivity(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                          true,
		"*/*":                       true,
		"application/activity+json": true,
		`application/ld+json; profile="https://www.w3.org/ns/activitystreams"`: true,
		activitypub.AcceptActivity: true,
		"text/html":                false,
		"text/html,application/xhtml+xml,*/*;q=0.8":        false,
		"text/html;q=0.5, application/activity+json":       true,
		"text/html, application/activity+json;q=0.1":       false,
		"text/html;q=0, application/json":                  true,
		"garbage;;;, text/html":                            false,
		"application/activity+json;q=0.9, text/html;q=0.9": true,
	} {
		if got := wantsActivity(accept); got != want {
			t.Errorf("wantsActivity(%q) = %v", accept, got)
		}
	}
}

func TestSummaryHTML(t *testing.T) {
	got := summaryHTML("a <b> & \"c\"\nline\n\npara\r\n")
	if want := "<p>a &lt;b&gt; &amp; &#34;c&#34;<br>line</p><p>para</p>"; got != want {
		t.Errorf("summaryHTML = %q, want %q", got, want)
	}
}

// golden compares a JSON document, after mask hides volatile fields, with testdata/name;
// -update rewrites it.
func golden(t *testing.T, name string, body []byte, mask func(map[string]any)) {
	t.Helper()
	var m map[string]any
	must(t, json.Unmarshal(body, &m))
	if mask != nil {
		mask(m)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	must(t, enc.Encode(m))
	got := buf.Bytes()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs from golden (run go test -update to accept):\n%s", name, got)
	}
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %s", resp.Request.URL, resp.StatusCode, want, body)
	}
}

func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
