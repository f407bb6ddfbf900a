package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// maxInboxBody is the inbox body cap; Mastodon uses 1 MiB too.
const maxInboxBody = activitypub.MaxDocumentBytes

// inboxError is a refusal with the status the inbox answers and the reason it gives.
type inboxError struct {
	status int
	reason string
	err    error
}

func (e *inboxError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *inboxError) Unwrap() error { return e.err }

func refuse(status int, err error, format string, args ...any) *inboxError {
	return &inboxError{status: status, reason: fmt.Sprintf(format, args...), err: err}
}

// inboxMediaTypes are the content types an inbox accepts. application/json is allowed
// because some peers (and curl users) send it for AS2 bodies.
var inboxMediaTypes = map[string]bool{
	"application/activity+json": true,
	"application/ld+json":       true,
	"application/json":          true,
}

// inbox serves POST /inbox (shared) and POST /actors/{username}/inbox (personal).
func (f *federation) inbox(w http.ResponseWriter, r *http.Request) {
	err := f.receive(r)
	status := http.StatusAccepted
	if err != nil {
		status = http.StatusInternalServerError
		var ie *inboxError
		if errors.As(err, &ie) {
			status = ie.status
		} else if s := activitypub.StatusOf(err); s != 0 && s != http.StatusInternalServerError {
			status = s
		} else if store.IsUnavailable(err) {
			// The database is restarting or out of reach: nothing was accepted, and a
			// peer should come back later rather than count a server error.
			status = http.StatusServiceUnavailable
		}
	}
	f.metrics.request(status)
	if status >= 400 {
		f.log.Info("inbox refused a request", "remote", remoteIP(r), "host", claimedHost(r), "status", status, "reason", err.Error())
		switch status {
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "60")
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "30")
		case http.StatusUnauthorized:
			// Unsigned or unverifiable: say what we accept (RFC 9421 section 5.1) so
			// that a double-knocking peer (Fedify) retries with a signature we check.
			w.Header().Set("Accept-Signature", activitypub.AcceptSignature())
		}
		http.Error(w, reasonOf(err, status), status)
		return
	}
	w.WriteHeader(status)
}

// reasonOf is the one-line reason the inbox answers with: specific for refusals, generic
// for internal failures (whose details stay in the log).
func reasonOf(err error, status int) string {
	if status == http.StatusServiceUnavailable {
		return "the server's database is unavailable; the activity was not processed, retry later"
	}
	if status >= 500 {
		return "internal error; the activity was not processed, retry later"
	}
	return err.Error()
}

func remoteIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// claimedHost is the host in the signature's keyId, for logs before the body is read.
func claimedHost(r *http.Request) string {
	for _, h := range []string{r.Header.Get("Signature"), r.Header.Get("Signature-Input"), r.Header.Get("Authorization")} {
		if i := strings.Index(strings.ToLower(h), "keyid="); i >= 0 {
			v := strings.Trim(strings.SplitN(h[i+6:], ",", 2)[0], `"; `)
			if u, err := url.Parse(v); err == nil && u.Host != "" {
				return u.Host
			}
		}
	}
	return ""
}

// receive checks one inbox POST and processes its activity. The order matters: cheap
// checks first, the policy before any fetch (a denied host makes us fetch nothing), the
// signature before any state change, the dedupe before the work.
func (f *federation) receive(r *http.Request) error {
	// Announce the received-log row this request is likely to write, so that the group
	// commit waits for it rather than committing without it (received_expect.go).
	ctx, expected := f.store.ExpectReceived(r.Context())
	defer expected()
	if r.ContentLength > maxInboxBody {
		return refuse(http.StatusRequestEntityTooLarge, nil, "body over %d bytes", maxInboxBody)
	}
	body, err := readBody(r)
	if err != nil {
		return refuse(http.StatusBadRequest, err, "reading body")
	}
	if len(body) > maxInboxBody {
		return refuse(http.StatusRequestEntityTooLarge, nil, "body over %d bytes", maxInboxBody)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !inboxMediaTypes[mt] {
		return refuse(http.StatusUnsupportedMediaType, err, "content type %q is not application/activity+json", r.Header.Get("Content-Type"))
	}
	// Strict bytes before the tolerant decoder: UTF-8 only, no duplicate or case-variant
	// members (docs/decisions.md), so that what is stored reads the same to everyone.
	if err := activitypub.CheckStrict(body); err != nil {
		return refuse(http.StatusBadRequest, err, "not a strict JSON document")
	}
	act, err := activitypub.DecodeObject(body)
	if err != nil {
		return refuse(activitypub.StatusOf(err), err, "not an ActivityStreams document")
	}
	actorID := act.Actor.ID()
	if act.ID == "" || len(act.Type) == 0 || actorID == "" {
		return refuse(http.StatusBadRequest, nil, "an activity needs id, type and actor")
	}
	au, err := url.Parse(actorID)
	if err != nil || au.Host == "" || (au.Scheme != "https" && au.Scheme != "http") {
		return refuse(http.StatusBadRequest, err, "actor %q is not an http(s) IRI", actorID)
	}
	if !sameOriginAs(act.ID, au) {
		return refuse(http.StatusBadRequest, nil, "activity id %s is not on the actor's host %s", act.ID, au.Host)
	}
	var recipient *localActor
	if name := r.PathValue("username"); name != "" {
		if recipient, err = f.actors.byName(ctx, name); errors.Is(err, errNotLocal) {
			return refuse(http.StatusNotFound, nil, "no actor %q here", name)
		} else if err != nil {
			return err
		}
	}
	typ := act.Type[0]
	// Mastodon's rule: a Delete (or Update) of an actor we never heard of is answered
	// without fetching anything, so account deletions cannot cause fetch storms.
	if (typ == "Delete" || typ == "Update") && act.Object.ID() == actorID {
		if known, err := f.knowsRemote(ctx, actorID); err != nil {
			return err
		} else if !known {
			return nil
		}
	}
	v, err := f.policies.evaluate(ctx, au.Host)
	if err != nil {
		return err
	}
	if !f.policies.allowRequest(au.Host, v.requestsPerMinute, f.now()) {
		f.refused.add(refusedRequest, f.now(), v.limitedBy...)
		return refuse(http.StatusTooManyRequests, nil, "more than %d requests a minute from %s", v.requestsPerMinute, au.Host)
	}
	if !v.allowed && typ != "Follow" && typ != "Offer" {
		f.refused.add(refusedRequest, f.now(), v.by...)
		return refuse(http.StatusForbidden, nil, "%s is not allowed to federate with this server", au.Host)
	}
	verified, err := f.verifyRequest(r, body)
	if err != nil {
		return err
	}
	if err := verified.CheckActor(actorID); err != nil {
		return err
	}
	f.client.ObserveInbound(ctx, au.Host, verified) // an RFC 9421 signer verifies RFC 9421
	if f.heardFrom != nil {
		if err := f.heardFrom(ctx, strings.ToLower(au.Host)); err != nil {
			f.log.Info("recording that a host is back failed", "host", au.Host, "error", err.Error())
		}
	}
	if !v.allowed && typ == "Offer" { // an Offer from a refused host: a Reject says so
		f.refused.add(refusedRequest, f.now(), v.by...)
		return f.rejectOffer(ctx, act, "this server does not take tickets from "+au.Host)
	}
	if !v.allowed { // a Follow from a refused host: answer it with a Reject
		f.refused.add(refusedFollow, f.now(), v.by...)
		return f.rejectFollow(ctx, act, fedv1.ReasonPolicyDenied, v.by...)
	}
	return f.process(ctx, act, v, recipient, body)
}

// process handles a verified activity once and records it. The replay check comes
// first: the ids recorded lately are in memory (received.go), and a concurrent copy of
// the same activity waits for this one. On a miss, an activity whose handling changes
// state is looked up in the store before acting; for every other type the received
// log's insert-if-absent is the replay check, since filing it for its recipients
// changes nothing else. The 202 is answered only after the received log committed
// the row (group-committed with the requests waiting at the same moment), so an
// acknowledged activity is durable; a failure before that answers an error and the
// peer retries.
func (f *federation) process(ctx context.Context, act *activitypub.Object, v verdict, recipient *localActor, body []byte) error {
	claim, replay, err := f.recent.claim(ctx, act.ID)
	if err != nil {
		return err // the request ended while a copy of the activity was being processed
	}
	if replay {
		return nil // ignored
	}
	recorded := false
	defer func() { claim.finish(recorded) }()
	vb, ok := verbs[act.Type[0]]
	if !ok {
		vb = otherVerb
	}
	if vb.changesState {
		if _, err := f.store.GetReceived(ctx, act.ID); err == nil {
			recorded = true
			return nil // a replay: ignored
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	recipients, err := vb.handle(f, ctx, &inbound{act: act, verdict: v, recipient: recipient})
	if err != nil {
		return err
	}
	if _, err := f.store.RecordReceived(ctx, store.Received{ID: act.ID, ActorID: act.Actor.ID(), Type: act.Type[0], ReceivedAt: f.now().UTC(), Raw: body}, recipients); err != nil {
		return err
	}
	recorded = true
	f.metrics.activity(act.Type[0])
	return nil
}

// sameOrigin reports whether two IRIs share scheme and host (with port).
func sameOrigin(a, b string) bool {
	ub, err := url.Parse(b)
	return err == nil && sameOriginAs(a, ub)
}

// sameOriginAs is sameOrigin with the second IRI already parsed (the inbox has parsed
// the actor's).
func sameOriginAs(a string, ub *url.URL) bool {
	ua, err := url.Parse(a)
	return err == nil && ua.Host != "" && strings.EqualFold(ua.Host, ub.Host) && ua.Scheme == ub.Scheme
}

// exactBodyBytes is the largest announced Content-Length read into a buffer of that
// size at once: activities are a few KiB, and a peer announcing a large body that it
// sends slowly makes the buffer grow with what arrives, not with what it claims.
const exactBodyBytes = 64 << 10

// readBody reads an inbox POST's body, at most maxInboxBody+1 bytes (the caller refuses
// more). With a Content-Length up to exactBodyBytes it reads into a buffer of that size
// at once, instead of io.ReadAll's growing buffer (issue 17: a copy and two allocations
// fewer per POST); a body shorter than announced is an error, as net/http reports it.
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= exactBodyBytes {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, maxInboxBody+1))
}

// knowsRemote reports whether a remote actor is cached or holds a Subscription here.
func (f *federation) knowsRemote(ctx context.Context, actorID string) (bool, error) {
	if _, err := f.store.GetRemoteActor(ctx, actorID); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	subs, err := f.subs.ofRemote(ctx, actorID)
	return len(subs) > 0, err
}

// inbound is one verified activity as the inbox hands it to its verb's handler.
type inbound struct {
	act *activitypub.Object
	// verdict is what the attached policies say about the sender's host.
	verdict verdict
	// recipient is the owner of the personal inbox it was posted to; nil for the
	// shared inbox.
	recipient *localActor
}

// verb is one row of the inbox's verb table.
type verb struct {
	// handle processes the activity and returns the local actors it concerns, for the
	// received log.
	handle func(f *federation, ctx context.Context, in *inbound) ([]string, error)
	// changesState marks verbs whose handling changes state (Subscriptions, the remote
	// actor cache, answers we publish): a copy is looked up in the store before acting.
	// For the others the received log's insert-if-absent is the replay check.
	changesState bool
}

// verbs is the inbox's verb table: one handler per activity type, each in its own file
// (follow.go, undo.go, ...). A type not listed is filed like a Create for the local
// actors it concerns (addressees.go).
var verbs = map[string]verb{
	"Follow":   {handle: (*federation).onFollow, changesState: true},
	"Undo":     {handle: (*federation).onUndo, changesState: true},
	"Accept":   {handle: (*federation).onAccept, changesState: true},
	"Reject":   {handle: (*federation).onAccept, changesState: true},
	"Delete":   {handle: (*federation).onDelete, changesState: true},
	"Update":   {handle: (*federation).onUpdate, changesState: true},
	"Move":     {handle: (*federation).onMove, changesState: true},
	"Like":     {handle: (*federation).onLike, changesState: true},
	"Offer":    {handle: (*federation).onOffer, changesState: true},
	"Push":     {handle: (*federation).onPush, changesState: true},
	"Create":   {handle: (*federation).onCreate},
	"Announce": {handle: (*federation).onAnnounce},
	"Resolve":  {handle: (*federation).onResolve, changesState: true},
}

// otherVerb handles every type the table does not list.
var otherVerb = verb{handle: (*federation).onCreate}
