package sources

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

const outboxToken = "c2s-token-0123456789"

type outboxFixture struct {
	mux  *http.ServeMux
	pub  *rendertest.StorePublisher
	logs *logSink
	ids  int
}

func newOutboxFixture(t *testing.T, withToken bool) *outboxFixture {
	t.Helper()
	f := &outboxFixture{pub: &rendertest.StorePublisher{St: rendertest.OpenStore(t)}, logs: &logSink{}}
	actor := &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "forge", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{PreferredUsername: "releases-demo"}}
	h, err := NewOutboxHandler(OutboxConfig{
		Lookup: func(_ context.Context, username string) (*fedv1.FederatedActor, error) {
			if username == actor.Spec.PreferredUsername {
				return actor, nil
			}
			return nil, nil
		},
		Secret: func(_ context.Context, ns string, ref fedv1.SecretKeyReference) ([]byte, error) {
			if withToken && ns == "forge" && ref.Name == "demo-outbox-token" && ref.Key == "token" {
				return []byte(outboxToken + "\n"), nil
			}
			return nil, errors.New("secret not found")
		},
		Publish: f.pub.Publish,
		Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
		Now:     func() time.Time { return rendertest.Now },
		NewID:   func() string { f.ids++; return "id-" + string(rune('a'+f.ids)) },
		Log:     f.logs.logger(),
		Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mux = http.NewServeMux()
	f.mux.Handle(OutboxPattern, h)
	return f
}

func (f *outboxFixture) post(path, auth, contentType, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

const (
	c2sPath  = "/actors/releases-demo/outbox"
	c2sAuth  = "Bearer " + outboxToken
	c2sType  = "application/activity+json"
	c2sLD    = `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`
	c2sPub   = `"to":["https://www.w3.org/ns/activitystreams#Public"]`
	c2sFollw = `"https://fed.example/actors/releases-demo/followers"`
)

func TestOutboxAccepts(t *testing.T) {
	tests := map[string]struct {
		body     string
		ctype    string
		wantType string
		objType  string
		vis      store.Visibility
		content  string
	}{
		"bare note": {`{"@context":"https://www.w3.org/ns/activitystreams","type":"Note",` + c2sPub + `,"content":"<p>Hello <script>x()</script><b>world</b></p>"}`,
			c2sType, "Create", "Note", store.Public, "<p>Hello <b>world</b></p>"},
		"create article followers only": {`{"type":"Create","actor":"https://evil.example/u","id":"https://evil.example/a","to":[` + c2sFollw + `],"object":{"type":"Article","name":"News","content":"Text","id":"https://evil.example/o"}}`,
			c2sLD, "Create", "Article", store.Followers, "Text"},
		"create note unlisted (object addressing)": {`{"type":"Create","object":{"type":"Note","content":"hi","to":[` + c2sFollw + `],"cc":["as:Public"]}}`,
			"application/json", "Create", "Note", store.Unlisted, "hi"},
		"announce": {`{"type":"Announce","object":"https://mastodon.example/users/a/statuses/1",` + c2sPub + `,"cc":[` + c2sFollw + `]}`,
			c2sType, "Announce", "", store.Public, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newOutboxFixture(t, true)
			rec := f.post(c2sPath, c2sAuth, tc.ctype, tc.body)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if f.pub.Created != 1 {
				t.Fatalf("%d activities stored", f.pub.Created)
			}
			a := f.pub.Acts[0]
			if rec.Header().Get("Location") != a.ID || !bytes.Equal(rec.Body.Bytes(), a.Raw) {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), a.ID)
			}
			if a.Type != tc.wantType || a.Visibility != tc.vis {
				t.Errorf("stored %s/%s, want %s/%s", a.Type, a.Visibility, tc.wantType, tc.vis)
			}
			doc, err := activitypub.DecodeObject(a.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Actor.ID() != rendertest.ActorID || strings.Contains(string(a.Raw), "evil.example") {
				t.Errorf("client-supplied actor or ids kept: %s", a.Raw)
			}
			if !strings.HasPrefix(doc.ID, rendertest.ActorID+"/activities/") {
				t.Errorf("server did not assign the id: %s", doc.ID)
			}
			if tc.objType == "" {
				if doc.Object.ID() != "https://mastodon.example/users/a/statuses/1" || a.Object != nil {
					t.Errorf("announce object %q", doc.Object.ID())
				}
				return
			}
			vis := map[store.Visibility]fedv1.Visibility{store.Public: fedv1.VisibilityPublic, store.Unlisted: fedv1.VisibilityUnlisted, store.Followers: fedv1.VisibilityFollowers}[tc.vis]
			if tc.objType == "Note" {
				rendertest.MastodonShows(t, a.Raw, vis)
			}
			obj := doc.Object.Object
			if !obj.Type.Has(tc.objType) || obj.Content != tc.content || obj.AttributedTo.IDs()[0] != rendertest.ActorID {
				t.Errorf("object %v content %q attributedTo %v", obj.Type, obj.Content, obj.AttributedTo.IDs())
			}
			if !obj.Published.Equal(rendertest.Now) {
				t.Errorf("published %v, want the server's clock", obj.Published)
			}
		})
	}
}

func TestOutboxRefuses(t *testing.T) {
	tests := map[string]struct {
		auth, ctype, body string
		withToken         bool
		path              string
		status            int
	}{
		"no token":             {"", c2sType, `{"type":"Note",` + c2sPub + `,"content":"x"}`, true, c2sPath, http.StatusUnauthorized},
		"wrong token":          {"Bearer nope", c2sType, `{"type":"Note",` + c2sPub + `,"content":"x"}`, true, c2sPath, http.StatusUnauthorized},
		"basic auth":           {"Basic " + outboxToken, c2sType, `{"type":"Note",` + c2sPub + `,"content":"x"}`, true, c2sPath, http.StatusUnauthorized},
		"no token secret":      {c2sAuth, c2sType, `{"type":"Note",` + c2sPub + `,"content":"x"}`, false, c2sPath, http.StatusUnauthorized},
		"unknown actor":        {c2sAuth, c2sType, `{"type":"Note"}`, true, "/actors/nobody/outbox", http.StatusNotFound},
		"form post":            {c2sAuth, "application/x-www-form-urlencoded", "content=x", true, c2sPath, http.StatusUnsupportedMediaType},
		"like":                 {c2sAuth, c2sType, `{"type":"Like","object":"https://m.example/s/1",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"follow":               {c2sAuth, c2sType, `{"type":"Follow","object":"https://m.example/u/1",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"delete":               {c2sAuth, c2sType, `{"type":"Delete","object":"https://fed.example/x",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"create of image":      {c2sAuth, c2sType, `{"type":"Create","object":{"type":"Image","url":"https://x/y.png"},` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"create by IRI":        {c2sAuth, c2sType, `{"type":"Create","object":"https://x.example/note",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"no audience":          {c2sAuth, c2sType, `{"type":"Note","content":"x"}`, true, c2sPath, http.StatusBadRequest},
		"someone's followers":  {c2sAuth, c2sType, `{"type":"Note","content":"x","to":["https://m.example/users/bob/followers"]}`, true, c2sPath, http.StatusBadRequest},
		"offer without target": {c2sAuth, c2sType, `{"type":"Offer","object":{"type":"Ticket","name":"t","content":"x"}}`, true, c2sPath, http.StatusBadRequest},
		"offer of a note":      {c2sAuth, c2sType, `{"type":"Offer","target":"https://forge.example/actors/repo","object":{"type":"Note","content":"x"}}`, true, c2sPath, http.StatusBadRequest},
		"ticket without title": {c2sAuth, c2sType, `{"type":"Offer","target":"https://forge.example/actors/repo","object":{"type":"Ticket","content":"x"}}`, true, c2sPath, http.StatusBadRequest},
		"bcc someone":          {c2sAuth, c2sType, `{"type":"Note","content":"x",` + c2sPub + `,"bcc":["https://m.example/users/bob"]}`, true, c2sPath, http.StatusBadRequest},
		"empty content":        {c2sAuth, c2sType, `{"type":"Note","content":"<script>x</script>",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"announce no object":   {c2sAuth, c2sType, `{"type":"Announce",` + c2sPub + `}`, true, c2sPath, http.StatusBadRequest},
		"not json":             {c2sAuth, c2sType, `type=Note`, true, c2sPath, http.StatusBadRequest},
		"too large":            {c2sAuth, c2sType, `{"type":"Note","content":"` + strings.Repeat("x", webhook.MaxBodyBytes) + `"}`, true, c2sPath, http.StatusRequestEntityTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newOutboxFixture(t, tc.withToken)
			rec := f.post(tc.path, tc.auth, tc.ctype, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if f.pub.Calls != 0 {
				t.Fatal("a refused post was published")
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Error("401 without a Bearer challenge")
			}
			if logs := f.logs.text(); strings.Contains(logs, outboxToken) || strings.Contains(logs, "nope") {
				t.Errorf("token in logs:\n%s", logs)
			}
		})
	}
}

// TestOutboxIdempotencyKey: a client that retries with the same Idempotency-Key gets the
// same activity, published once; without a key every post is a new activity.
func TestOutboxIdempotencyKey(t *testing.T) {
	f := newOutboxFixture(t, true)
	body := `{"type":"Note",` + c2sPub + `,"content":"release day"}`
	a := f.post(c2sPath, c2sAuth, c2sType, body, "Idempotency-Key", "post-42")
	b := f.post(c2sPath, c2sAuth, c2sType, body, "Idempotency-Key", "post-42")
	if a.Code != http.StatusCreated || b.Code != http.StatusCreated || a.Header().Get("Location") != b.Header().Get("Location") {
		t.Fatalf("retry: %d %d, %q vs %q", a.Code, b.Code, a.Header().Get("Location"), b.Header().Get("Location"))
	}
	c := f.post(c2sPath, c2sAuth, c2sType, body)
	d := f.post(c2sPath, c2sAuth, c2sType, body)
	if c.Header().Get("Location") == d.Header().Get("Location") {
		t.Fatal("posts without a key share an id")
	}
	if f.pub.Created != 3 {
		t.Fatalf("%d activities stored, want 3", f.pub.Created)
	}
}

// TestOutboxDirectAndOffer: a Note to a remote actor only is a Direct Create naming that
// actor (the server delivers to it), and an Offer of a Ticket becomes a ForgeFed Offer to
// its target with the Ticket's title and Markdown source, Direct.
func TestOutboxDirectAndOffer(t *testing.T) {
	const actor = "https://fed.example/actors/alice"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dm, err := BuildOutboxActivity([]byte(`{"type":"Note","content":"hi","to":["https://m.example/users/bob"]}`), actor, "k1", now)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Type   string
		To, Cc []string
		Target string
		Object struct {
			Type, Name, Content string
			AttributedTo        []string
			Source              struct{ Content, MediaType string }
		}
	}
	if err := json.Unmarshal(dm.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if dm.Visibility != store.Direct || fmt.Sprint(got.To) != "[https://m.example/users/bob]" || len(got.Cc) != 0 {
		t.Errorf("direct note: visibility %s to %v cc %v", dm.Visibility, got.To, got.Cc)
	}

	offer, err := BuildOutboxActivity([]byte(`{"type":"Offer","target":"https://forge.example/actors/repo",
		"object":{"type":"Ticket","name":"Crash on start","content":"<p>It <script>x</script>crashes</p>","source":{"content":"It **crashes**","mediaType":"text/markdown"}}}`), actor, "k2", now)
	if err != nil {
		t.Fatal(err)
	}
	got = struct {
		Type   string
		To, Cc []string
		Target string
		Object struct {
			Type, Name, Content string
			AttributedTo        []string
			Source              struct{ Content, MediaType string }
		}
	}{}
	if err := json.Unmarshal(offer.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "Offer" || got.Target != "https://forge.example/actors/repo" || fmt.Sprint(got.To) != "[https://forge.example/actors/repo]" {
		t.Errorf("offer: type %s target %s to %v", got.Type, got.Target, got.To)
	}
	if got.Object.Type != "Ticket" || got.Object.Name != "Crash on start" || got.Object.Source.Content != "It **crashes**" ||
		strings.Contains(got.Object.Content, "script") || fmt.Sprint(got.Object.AttributedTo) != "["+actor+"]" {
		t.Errorf("offered ticket: %+v", got.Object)
	}
	if offer.Visibility != store.Direct || offer.Object == nil || offer.Object.Type != "Ticket" {
		t.Errorf("offer stored as %s with object %+v", offer.Visibility, offer.Object)
	}
}
