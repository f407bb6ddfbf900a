package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/urls"
	"github.com/fedforge/fedforge/internal/version"
)

// Media types of actor documents.
const (
	contentTypeActivity = "application/activity+json"
	retryAfterSeconds   = "10"
)

// errNoServer means the FederationServer is not (yet) in the cache.
var errNoServer = errors.New("server: FederationServer not found")

// errNoKeys means an actor's key Secret is not written yet.
var errNoKeys = errors.New("server: actor keys not ready")

// handler serves the read-only public documents of one FederationServer from a cache-like
// reader: every lookup is a read of the informer cache, never an API call.
type handler struct {
	reader client.Reader
	server types.NamespacedName
}

// newHandler builds the discovery and actor routes of server, reading through reader: the
// process's informer cache, or any cache with the indexes of indexActors.
func newHandler(reader client.Reader, server types.NamespacedName) *http.ServeMux {
	h := &handler{reader: reader, server: server}
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/webfinger", activitypub.WebFingerHandler(h.webFinger))
	mux.HandleFunc("GET /.well-known/host-meta", h.hostMeta)
	mux.HandleFunc("GET /.well-known/host-meta.json", h.hostMeta)
	mux.HandleFunc("GET /.well-known/nodeinfo", h.nodeInfoDiscovery)
	mux.Handle("GET /nodeinfo/2.0", activitypub.NodeInfoHandler("2.0", h.nodeInfo))
	mux.Handle("GET /nodeinfo/2.1", activitypub.NodeInfoHandler("2.1", h.nodeInfo))
	mux.HandleFunc("GET /actors/{username}", h.actor)
	return mux
}

// federationServer reads this process's FederationServer from the cache.
func (h *handler) federationServer(ctx context.Context) (*fedv1.FederationServer, error) {
	var fs fedv1.FederationServer
	if err := h.reader.Get(ctx, h.server, &fs); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNoServer
		}
		return nil, err
	}
	return &fs, nil
}

// Cache indexes of FederatedActors, so that a request reads only the actors it needs.
const (
	// indexActorServer is spec.serverRef.name.
	indexActorServer = "fedforge.serverRef"
	// indexActorUsername is spec.serverRef.name + "/" + lower-cased preferredUsername.
	indexActorUsername = "fedforge.serverUsername"
)

// indexActors registers the actor indexes on c; it must run before c starts.
func indexActors(ctx context.Context, c cache.Cache) error {
	if err := c.IndexField(ctx, &fedv1.FederatedActor{}, indexActorServer, func(o client.Object) []string {
		return []string{o.(*fedv1.FederatedActor).Spec.ServerRef.Name}
	}); err != nil {
		return err
	}
	return c.IndexField(ctx, &fedv1.FederatedActor{}, indexActorUsername, func(o client.Object) []string {
		a := o.(*fedv1.FederatedActor)
		return []string{usernameKey(a.Spec.ServerRef.Name, a.Spec.PreferredUsername)}
	})
}

func usernameKey(server, username string) string {
	return server + "/" + strings.ToLower(username)
}

// actors lists the actors this server serves (matching the given index), leaving out
// those being deleted. They come sorted by creation, then name, so that when two actors
// claim one username (which the operator reports as UsernameConflict) the older one is
// served. The objects are the cache's own (no deep copy): callers only read them.
func (h *handler) actors(ctx context.Context, field, value string) ([]fedv1.FederatedActor, error) {
	var list fedv1.FederatedActorList
	if err := h.reader.List(ctx, &list, client.InNamespace(h.server.Namespace),
		client.MatchingFields{field: value}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]fedv1.FederatedActor, 0, len(list.Items))
	for _, a := range list.Items {
		if a.Spec.ServerRef.Name == h.server.Name && a.DeletionTimestamp == nil {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// actorByUsername finds a served actor by preferredUsername; fold makes the match
// case-insensitive, as acct: lookups are.
func (h *handler) actorByUsername(ctx context.Context, username string, fold bool) (*fedv1.FederatedActor, error) {
	all, err := h.actors(ctx, indexActorUsername, usernameKey(h.server.Name, username))
	if err != nil {
		return nil, err
	}
	for i := range all {
		u := all[i].Spec.PreferredUsername
		if u == username || (fold && strings.EqualFold(u, username)) {
			return &all[i], nil
		}
	}
	return nil, nil
}

// webFinger answers acct:user@host and actor URL resources for this server's actors.
func (h *handler) webFinger(ctx context.Context, r activitypub.Resource) (*activitypub.JRD, error) {
	fs, err := h.federationServer(ctx)
	if errors.Is(err, errNoServer) {
		return nil, activitypub.ErrNoSuchResource
	} else if err != nil {
		return nil, err
	}
	host := strings.ToLower(fs.Spec.Host)
	var username string
	switch r.Scheme {
	case "acct":
		if r.Host != host {
			return nil, activitypub.ErrNoSuchResource
		}
		username = r.User
	default:
		u, err := url.Parse(r.URL)
		if err != nil || strings.ToLower(u.Host) != host {
			return nil, activitypub.ErrNoSuchResource
		}
		name, ok := strings.CutPrefix(u.EscapedPath(), "/actors/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return nil, activitypub.ErrNoSuchResource
		}
		if username, err = url.PathUnescape(name); err != nil {
			return nil, activitypub.ErrNoSuchResource
		}
		// The id must be exactly ours (scheme included), not merely on our host.
		if urls.ForActor(fs.BaseURL(), username).ID != r.URL {
			return nil, activitypub.ErrNoSuchResource
		}
	}
	a, err := h.actorByUsername(ctx, username, r.Scheme == "acct")
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, activitypub.ErrNoSuchResource
	}
	id := urls.ForActor(fs.BaseURL(), a.Spec.PreferredUsername).ID
	return activitypub.NewActorJRD(a.Spec.PreferredUsername, fs.Spec.Host, id, a.Spec.URL), nil
}

// hostMeta serves host-meta (XRD) and host-meta.json for the server's base URL.
func (h *handler) hostMeta(w http.ResponseWriter, r *http.Request) {
	fs, ok := h.serverOr503(w, r)
	if !ok {
		return
	}
	activitypub.HostMetaHandler(fs.BaseURL()).ServeHTTP(w, r)
}

// nodeInfoDiscovery serves /.well-known/nodeinfo.
func (h *handler) nodeInfoDiscovery(w http.ResponseWriter, r *http.Request) {
	fs, ok := h.serverOr503(w, r)
	if !ok {
		return
	}
	activitypub.NodeInfoDiscoveryHandler(fs.BaseURL()).ServeHTTP(w, r)
}

// nodeInfo reports software fedforge at this build's version and the number of actors.
func (h *handler) nodeInfo(ctx context.Context) (activitypub.NodeInfo, error) {
	all, err := h.actors(ctx, indexActorServer, h.server.Name)
	if err != nil {
		return activitypub.NodeInfo{}, err
	}
	return activitypub.NodeInfo{
		Software: activitypub.NodeInfoSoftware{
			Name:       "fedforge",
			Version:    version.Version,
			Repository: "https://github.com/fedforge/fedforge",
			Homepage:   "https://github.com/fedforge/fedforge",
		},
		Usage: activitypub.NodeInfoUsage{Users: activitypub.NodeInfoUsers{
			Total: len(all), ActiveMonth: len(all), ActiveHalfyear: len(all),
		}},
		Metadata: map[string]any{"nodeName": h.server.Name},
	}, nil
}

// serverOr503 reads the FederationServer, answering 503 when it is not in the cache yet.
func (h *handler) serverOr503(w http.ResponseWriter, r *http.Request) (*fedv1.FederationServer, bool) {
	fs, err := h.federationServer(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "server not configured yet", http.StatusServiceUnavailable)
		return nil, false
	}
	return fs, true
}

// actor serves GET /actors/{username}: the AS2 document to ActivityPub clients, an HTML
// profile (or a redirect to spec.url) to browsers.
func (h *handler) actor(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept")
	as2 := wantsActivity(r.Header.Get("Accept"))
	fs, ok := h.serverOr503(w, r)
	if !ok {
		return
	}
	a, err := h.actorByUsername(r.Context(), r.PathValue("username"), false)
	if err != nil {
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if a == nil {
		notFound(w, as2)
		return
	}
	if !as2 {
		if a.Spec.URL != "" {
			http.Redirect(w, r, a.Spec.URL, http.StatusFound)
			return
		}
		writeProfilePage(w, fs, a)
		return
	}
	doc, err := h.actorDocument(r.Context(), fs, a)
	if errors.Is(err, errNoKeys) {
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "actor keys not ready", http.StatusServiceUnavailable)
		return
	} else if err != nil {
		http.Error(w, "actor unavailable", http.StatusInternalServerError)
		return
	}
	body, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeActivity)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

// actorDocument builds the AS2 actor document of a from its spec and its key Secret.
func (h *handler) actorDocument(ctx context.Context, fs *fedv1.FederationServer, a *fedv1.FederatedActor) (*activitypub.Object, error) {
	rsaPEM, edKey, err := h.publicKeys(ctx, a)
	if err != nil {
		return nil, err
	}
	base := fs.BaseURL()
	u := urls.ForActor(base, a.Spec.PreferredUsername)
	kind := string(a.Spec.Type)
	if kind == "" {
		kind = string(fedv1.ActorService)
	}
	spec := activitypub.ActorSpec{
		ID:                u.ID,
		Types:             activitypub.FollowableTypes(kind),
		PreferredUsername: a.Spec.PreferredUsername,
		Name:              a.Spec.Name,
		Summary:           summaryHTML(a.Spec.Summary),
		URL:               a.Spec.URL,
		Inbox:             u.Inbox(),
		Outbox:            u.Outbox(),
		Followers:         u.Followers(),
		Following:         u.Following(),
		SharedInbox:       urls.SharedInbox(base),
		RSAPublicKeyPEM:   rsaPEM,
		Ed25519PublicKey:  edKey,
		ManuallyApproves:  a.Spec.ManuallyApprovesFollowers,
		Discoverable:      a.Spec.Discoverable == nil || *a.Spec.Discoverable,
		Published:         a.CreationTimestamp.UTC(),
	}
	if a.Spec.Icon != nil {
		spec.IconURL, spec.IconMediaType = a.Spec.Icon.URL, a.Spec.Icon.MediaType
	}
	return activitypub.NewActor(spec), nil
}

// publicKeys reads the actor's current public keys from its key Secret (in the cache,
// which holds only Secrets Fedforge manages). A missing Secret or missing keys are
// errNoKeys: the key controller has not written them yet.
func (h *handler) publicKeys(ctx context.Context, a *fedv1.FederatedActor) (string, ed25519.PublicKey, error) {
	name := a.Status.KeySecretName
	if name == "" {
		return "", nil, errNoKeys
	}
	var s corev1.Secret
	if err := h.reader.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil, errNoKeys
		}
		return "", nil, err
	}
	rsaPEM := s.Data[keys.RSAPublicKey]
	if len(rsaPEM) == 0 {
		return "", nil, errNoKeys
	}
	if _, err := keys.ParsePublic(rsaPEM); err != nil {
		return "", nil, errNoKeys
	}
	var edKey ed25519.PublicKey
	if b := s.Data[keys.Ed25519PublicKey]; len(b) > 0 {
		if k, err := keys.ParsePublic(b); err == nil {
			edKey, _ = k.(ed25519.PublicKey)
		}
	}
	return string(rsaPEM), edKey, nil
}

// summaryHTML turns the plain-text spec.summary into the HTML that summary holds in AS2:
// escaped, with paragraphs and line breaks.
func summaryHTML(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, p := range strings.Split(s, "\n\n") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>"))
		b.WriteString("</p>")
	}
	return b.String()
}

// notFound answers 404 in the form the client asked for.
func notFound(w http.ResponseWriter, as2 bool) {
	if as2 {
		w.Header().Set("Content-Type", contentTypeActivity)
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}` + "\n"))
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}
