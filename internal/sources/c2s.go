package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"github.com/fedforge/fedforge/internal/metrics"
	"github.com/fedforge/fedforge/internal/render"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// OutboxPattern is the route the server mounts NewOutboxHandler at: the actor's outbox,
// which answers GET with the collection and POST with this handler (ActivityPub C2S).
const OutboxPattern = "POST /actors/{username}/outbox"

// OutboxTokenKey is the key of the bearer token in the outbox token Secret.
const OutboxTokenKey = "token"

// DefaultOutboxTokenRef names the Secret that holds an actor's client-to-server token
// when nothing else is configured: "<FederatedActor name>-outbox-token", key "token",
// in the actor's namespace. An actor without that Secret has no C2S outbox (401).
func DefaultOutboxTokenRef(actor *fedv1.FederatedActor) (fedv1.SecretKeyReference, bool) {
	return fedv1.SecretKeyReference{Name: actor.Name + "-outbox-token", Key: OutboxTokenKey}, true
}

// OutboxConfig wires the client-to-server outbox handler. Lookup, Secret, Publish and
// Base are required.
type OutboxConfig struct {
	// Lookup finds a served actor by preferredUsername; nil (no error) means none (404).
	Lookup func(ctx context.Context, username string) (*fedv1.FederatedActor, error)
	// Secret reads the token Secret.
	Secret SecretFunc
	// TokenRef says where an actor's token lives; false disables the outbox for that
	// actor. Defaults to DefaultOutboxTokenRef until the API declares the reference.
	TokenRef func(actor *fedv1.FederatedActor) (fedv1.SecretKeyReference, bool)
	Publish  render.PublishFunc
	Base     render.BaseFunc
	Now      func() time.Time
	// NewID returns a fresh random identity for a post without an Idempotency-Key.
	NewID   func() string
	Log     logr.Logger
	Metrics prometheus.Registerer
}

// OutboxHandler accepts activities a local client posts to an actor's outbox: Create of
// a Note or Article, a bare Note or Article (wrapped in a Create, as the C2S rules say),
// or Announce. The server assigns ids, sets the actor and dates, sanitises content, and
// publishes to the actor's followers. Anything else is refused with 400.
type OutboxHandler struct {
	cfg   OutboxConfig
	posts *prometheus.CounterVec
}

// NewOutboxHandler checks cfg and registers fedforge_outbox_posts_total.
func NewOutboxHandler(cfg OutboxConfig) (*OutboxHandler, error) {
	if cfg.Lookup == nil || cfg.Secret == nil || cfg.Publish == nil || cfg.Base == nil {
		return nil, errors.New("sources: outbox handler needs Lookup, Secret, Publish and Base")
	}
	if cfg.TokenRef == nil {
		cfg.TokenRef = DefaultOutboxTokenRef
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	posts, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_outbox_posts_total",
		Help: "Client-to-server outbox posts by result (published, unauthorized, refused, not_found, error).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	return &OutboxHandler{cfg: cfg, posts: posts}, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errRefused is a post the C2S outbox does not accept (answered 400 with the reason).
var errRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errRefused}, args...)...)
}

// ServeHTTP authenticates the bearer token in constant time, then builds, publishes and
// returns the activity: 201 Created with its id in Location.
func (h *OutboxHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	username := r.PathValue("username")
	log := h.cfg.Log.WithValues("username", username, "remote", r.RemoteAddr)
	actor, err := h.cfg.Lookup(ctx, username)
	if err != nil {
		log.Error(err, "outbox lookup failed")
		h.posts.WithLabelValues("error").Inc()
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if actor == nil {
		h.posts.WithLabelValues("not_found").Inc()
		http.Error(w, "no such actor", http.StatusNotFound)
		return
	}
	if !h.authorized(ctx, log, actor, r.Header.Get("Authorization")) {
		h.posts.WithLabelValues("unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="fedforge outbox"`)
		http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil ||
		(mt != "application/activity+json" && mt != "application/ld+json" && mt != "application/json") {
		h.posts.WithLabelValues("refused").Inc()
		http.Error(w, "send application/activity+json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBodyBytes))
	if err != nil {
		h.posts.WithLabelValues("refused").Inc()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	base, err := h.cfg.Base(ctx)
	if err != nil {
		log.Error(err, "server base URL unavailable")
		h.posts.WithLabelValues("error").Inc()
		http.Error(w, "server not configured", http.StatusServiceUnavailable)
		return
	}
	key := "c2s|" + h.cfg.NewID()
	if k := strings.TrimSpace(r.Header.Get("Idempotency-Key")); k != "" {
		key = "c2s|key|" + k
	}
	act, err := BuildOutboxActivity(body, urls.ForActor(base, actor.Spec.PreferredUsername).ID, key, h.cfg.Now())
	if err != nil {
		h.posts.WithLabelValues("refused").Inc()
		log.V(1).Info("outbox post refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.cfg.Publish(ctx, actor, nil, []store.Activity{act}); err != nil {
		log.Error(err, "publishing outbox post failed")
		h.posts.WithLabelValues("error").Inc()
		http.Error(w, "publishing failed", http.StatusInternalServerError)
		return
	}
	h.posts.WithLabelValues("published").Inc()
	log.Info("outbox post published", "id", act.ID, "type", act.Type)
	w.Header().Set("Location", act.ID)
	w.Header().Set("Content-Type", "application/activity+json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(act.Raw)
}

// authorized checks "Authorization: Bearer <token>" against the actor's token Secret.
// A missing Secret disables the outbox (fail closed); nothing about the token is logged.
func (h *OutboxHandler) authorized(ctx context.Context, log logr.Logger, actor *fedv1.FederatedActor, header string) bool {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return false
	}
	ref, enabled := h.cfg.TokenRef(actor)
	if !enabled {
		return false
	}
	secret, err := h.cfg.Secret(ctx, actor.Namespace, ref)
	if err != nil {
		log.Info("outbox token Secret unavailable; the outbox is closed", "secret", ref.Name, "reason", err.Error())
		return false
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	if len(secret) == 0 {
		return false
	}
	if !webhook.VerifyToken(strings.TrimSpace(token), secret) {
		log.Info("outbox bearer token rejected")
		return false
	}
	return true
}

// BuildOutboxActivity turns a client's C2S post into the activity to publish for
// actorID: ids derive from key, client-supplied ids, actors and dates are replaced, and
// HTML is sanitised. It is exported for the fuzzer and for callers outside HTTP.
func BuildOutboxActivity(body []byte, actorID, key string, now time.Time) (store.Activity, error) {
	in, err := activitypub.DecodeObject(body)
	if err != nil {
		return store.Activity{}, refuse("%v", err)
	}
	followers := urls.Actor{ID: actorID}.Followers()
	now = now.UTC().Truncate(time.Second)
	switch {
	case in.Type.HasAny(activitypub.TypeNote, activitypub.TypeArticle):
		// A bare object: wrap it in a Create (ActivityPub 6.2.1).
		return buildCreate(in, nil, actorID, followers, key, now)
	case in.Type.Has(activitypub.TypeCreate):
		obj := in.Object.Object
		if obj == nil {
			return store.Activity{}, refuse("Create must embed its object")
		}
		if !obj.Type.HasAny(activitypub.TypeNote, activitypub.TypeArticle) {
			return store.Activity{}, refuse("only Note and Article can be created, not %v", []string(obj.Type))
		}
		return buildCreate(obj, in, actorID, followers, key, now)
	case in.Type.Has(activitypub.TypeOffer):
		return buildOffer(in, actorID, key, now)
	case in.Type.Has(activitypub.TypeAnnounce):
		target := render.CleanURL(in.Object.ID())
		if target == "" {
			return store.Activity{}, refuse("Announce needs the IRI of the object it shares")
		}
		vis, direct, err := visibilityOf(followers, in)
		if err != nil {
			return store.Activity{}, err
		}
		to, cc := address(vis, followers, direct)
		act := activitypub.NewActivity(activitypub.TypeAnnounce, render.ActivityID(actorID, key), actorID, activitypub.IRIRef(target), to, cc)
		act.Published = activitypub.Time{Time: now}
		raw, err := json.Marshal(act)
		if err != nil {
			return store.Activity{}, err
		}
		return store.Activity{ID: act.ID, ActorID: actorID, Type: activitypub.TypeAnnounce, ObjectID: target,
			Visibility: storeVisibility(vis), Published: now, Raw: raw}, nil
	}
	return store.Activity{}, refuse("unsupported type %v: post Create (Note or Article), a Note or Article, Offer (Ticket) or Announce", []string(in.Type))
}

// buildOffer makes the Offer of a Ticket to a remote repository (ForgeFed "Opening a
// ticket"): the client names the repository (or its ticket tracker) as target and gives
// the Ticket's title (name or summary) and body (source in Markdown, or content); the
// Offer goes to the target only, and its Accept or Reject comes back to the actor's inbox.
func buildOffer(in *activitypub.Object, actorID, key string, now time.Time) (store.Activity, error) {
	obj := in.Object.Object
	if obj == nil || !obj.Type.Has(activitypub.TypeTicket) {
		return store.Activity{}, refuse("Offer must embed the Ticket it offers")
	}
	target := render.CleanURL(in.Target.ID())
	if target == "" || !remoteActorIRI(target) {
		return store.Activity{}, refuse("Offer needs target: the IRI of the repository (or ticket tracker) to open the ticket on")
	}
	title := strings.TrimSpace(obj.Name)
	if title == "" {
		title = strings.TrimSpace(render.SanitizeHTML(obj.Summary))
	}
	if title == "" {
		return store.Activity{}, refuse("the Ticket needs a title (name or summary)")
	}
	ticket := &activitypub.Object{
		ID: render.ObjectID(actorID, key), Type: activitypub.Types{activitypub.TypeTicket},
		AttributedTo: activitypub.IRIRefs(actorID), Name: title, Published: activitypub.Time{Time: now},
		Content: strings.TrimSpace(render.SanitizeHTML(obj.Content)), To: activitypub.IRIRefs(target),
	}
	if ticket.Content != "" {
		ticket.MediaType = "text/html"
	}
	if src := obj.Source; src != nil && strings.TrimSpace(src.Content) != "" {
		ticket.Source = &activitypub.Content{Content: src.Content, MediaType: "text/markdown"}
	}
	if ticket.Content == "" && ticket.Source == nil {
		return store.Activity{}, refuse("the Ticket needs a body (source or content)")
	}
	act := activitypub.NewActivity(activitypub.TypeOffer, render.ActivityID(actorID, key), actorID, activitypub.Embed(ticket),
		activitypub.IRIRefs(target), nil)
	act.Target = activitypub.IRIRef(target)
	act.Published = ticket.Published
	rawAct, err := json.Marshal(act)
	if err != nil {
		return store.Activity{}, err
	}
	rawTicket, err := json.Marshal(ticket)
	if err != nil {
		return store.Activity{}, err
	}
	return store.Activity{ID: act.ID, ActorID: actorID, Type: activitypub.TypeOffer, ObjectID: ticket.ID, Visibility: store.Direct,
		Published: now, Raw: rawAct, Object: &store.Object{ID: ticket.ID, ActorID: actorID, Type: activitypub.TypeTicket,
			Visibility: store.Direct, Published: now, Updated: now, Raw: rawTicket}}, nil
}

// buildCreate makes the Create of a client's Note or Article, keeping only properties
// Fedforge understands, with addressing merged from the activity and the object.
func buildCreate(obj, wrapper *activitypub.Object, actorID, followers, key string, now time.Time) (store.Activity, error) {
	addressed := []*activitypub.Object{obj}
	if wrapper != nil {
		addressed = append(addressed, wrapper)
	}
	vis, direct, err := visibilityOf(followers, addressed...)
	if err != nil {
		return store.Activity{}, err
	}
	to, cc := address(vis, followers, direct)
	content := strings.TrimSpace(render.SanitizeHTML(obj.Content))
	if content == "" {
		return store.Activity{}, refuse("%v without content", []string(obj.Type))
	}
	typ := activitypub.TypeNote
	if obj.Type.Has(activitypub.TypeArticle) {
		typ = activitypub.TypeArticle
	}
	note := &activitypub.Object{
		Context: activitypub.ActivityContext(), ID: render.ObjectID(actorID, key), Type: activitypub.Types{typ},
		AttributedTo: activitypub.IRIRefs(actorID), Content: content, Published: activitypub.Time{Time: now},
		Name: strings.TrimSpace(obj.Name), Summary: strings.TrimSpace(render.SanitizeHTML(obj.Summary)),
		Sensitive: obj.Sensitive, To: to, Cc: cc,
	}
	if reply := render.CleanURL(obj.InReplyTo.ID()); reply != "" {
		note.InReplyTo = activitypub.IRIRef(reply)
	}
	for _, u := range obj.URL.IDs() {
		if u = render.CleanURL(u); u != "" {
			note.URL = append(note.URL, activitypub.IRIRef(u))
		}
	}
	for _, t := range obj.Tag {
		if o := t.Object; o != nil && o.Type.Has(activitypub.TypeHashtag) && strings.HasPrefix(o.Name, "#") && len(o.Name) > 1 {
			tag := &activitypub.Object{Type: activitypub.Types{activitypub.TypeHashtag}, Name: o.Name}
			tag.Href = render.CleanURL(o.Href)
			note.Tag = append(note.Tag, activitypub.ObjectRef(tag))
		}
	}
	act := activitypub.NewActivity(activitypub.TypeCreate, render.ActivityID(actorID, key), actorID, activitypub.Embed(note), to, cc)
	act.Published = note.Published
	rawAct, err := json.Marshal(act)
	if err != nil {
		return store.Activity{}, err
	}
	rawNote, err := json.Marshal(note)
	if err != nil {
		return store.Activity{}, err
	}
	sv := storeVisibility(vis)
	return store.Activity{ID: act.ID, ActorID: actorID, Type: activitypub.TypeCreate, ObjectID: note.ID, Visibility: sv,
		Published: now, Raw: rawAct, Object: &store.Object{ID: note.ID, ActorID: actorID, Type: typ, Visibility: sv,
			Published: now, Updated: now, Raw: rawNote}}, nil
}

// visibilityOf reads the audience a client chose: the public collection, the actor's
// followers, and remote actors named by their http(s) IRI (a mention, the repository an
// Offer goes to), which the server resolves and delivers to (internal/server,
// publishActivities). Another collection, or no audience at all, is refused rather than
// silently widened or dropped. Addressed to remote actors only, the visibility is Direct.
func visibilityOf(followers string, objs ...*activitypub.Object) (activitypub.Visibility, []string, error) {
	var publicTo, publicCc, toFollowers bool
	var direct []string
	seen := map[string]bool{}
	for _, o := range objs {
		for _, rs := range []struct {
			refs  activitypub.Refs
			to    bool
			blind bool
		}{{o.To, true, false}, {o.Cc, false, false}, {o.Bto, true, true}, {o.Bcc, false, true}, {o.Audience, false, false}} {
			for _, id := range rs.refs.IDs() {
				switch {
				case activitypub.IsPublicIRI(id) && rs.to:
					publicTo = true
				case activitypub.IsPublicIRI(id):
					publicCc = true
				case id == followers:
					toFollowers = true
				case rs.blind:
					// Delivering to an actor means naming it in what is delivered.
					return "", nil, refuse("cannot address %s in bto or bcc: it would be revealed; use to or cc", id)
				case remoteActorIRI(id):
					if !seen[id] {
						seen[id] = true
						direct = append(direct, id)
					}
				default:
					return "", nil, refuse("cannot address %s: only the public collection, %s and actors' IRIs are supported", id, followers)
				}
			}
		}
	}
	switch {
	case publicTo:
		return activitypub.Public, direct, nil
	case publicCc:
		return activitypub.Unlisted, direct, nil
	case toFollowers:
		return activitypub.FollowersOnly, direct, nil
	case len(direct) > 0:
		return visibilityDirect, direct, nil
	}
	return "", nil, refuse("no audience: address the public collection, %s or an actor in to/cc", followers)
}

// visibilityDirect is an activity addressed to named actors only (store.Direct).
const visibilityDirect activitypub.Visibility = "direct"

// remoteActorIRI accepts an absolute http(s) IRI that is not a collection we know of (a
// followers collection is not an actor: delivering to it would mean its owner's fan-out).
func remoteActorIRI(id string) bool {
	u, err := url.Parse(id)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		!strings.HasSuffix(u.Path, "/followers") && !strings.HasSuffix(u.Path, "/following")
}

// address returns to and cc for vis, with the remote actors addressed directly.
func address(vis activitypub.Visibility, followers string, direct []string) (to, cc activitypub.Refs) {
	if vis == visibilityDirect {
		return activitypub.IRIRefs(direct...), nil
	}
	return activitypub.Address(vis, followers, direct...)
}

func storeVisibility(v activitypub.Visibility) store.Visibility {
	switch v {
	case visibilityDirect:
		return store.Direct
	case activitypub.Unlisted:
		return store.Unlisted
	case activitypub.FollowersOnly:
		return store.Followers
	}
	return store.Public
}
