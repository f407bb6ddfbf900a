// Package lookup resolves what a person pastes into a Fediverse search box, an object's
// URL or an actor's handle, into one verified document: a handle through WebFinger, the
// document through the outbound client (the network guard, timeouts, the body cap, the
// host's signature profile) and the provenance rule (a document counts only when served
// from its own id). `fedforge lookup`, the server's lookup endpoint, the profile page's
// follow form and the resolution of a Subscription's remoteActor all go through it, so
// that they refuse and accept the same things.
package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// MaxTarget bounds what can be looked up: a URL the size the API allows for remoteActor,
// and a handle (a WebFinger acct is user@host).
const MaxTarget = 2048

// ErrBadTarget is wrapped by every refusal of the text itself (neither an http(s) URL
// nor a handle, too long), before anything is fetched.
var ErrBadTarget = errors.New("not an http(s) URL nor a user@host handle")

// Target is a parsed lookup: either URL or User and Host.
type Target struct {
	URL        string
	User, Host string
}

// IsHandle reports whether the target is a handle (resolved with WebFinger first).
func (t Target) IsHandle() bool { return t.URL == "" }

// String is the target as an URL or as acct:user@host.
func (t Target) String() string {
	if t.IsHandle() {
		return "acct:" + t.User + "@" + t.Host
	}
	return t.URL
}

// Parse reads an http(s) URL, or a handle written acct:user@host, user@host or
// @user@host.
func Parse(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxTarget {
		return Target{}, fmt.Errorf("%w: give an object's URL or an actor's handle of at most %d characters", ErrBadTarget, MaxTarget)
	}
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return Target{}, fmt.Errorf("%w: %q is not a usable URL", ErrBadTarget, s)
		}
		return Target{URL: u.String()}, nil
	}
	user, host, err := ParseHandle(s)
	if err != nil {
		return Target{}, err
	}
	return Target{User: user, Host: host}, nil
}

// ParseHandle reads "you@your.instance", with or without a leading @ or acct:.
func ParseHandle(h string) (user, host string, err error) {
	h = strings.TrimSpace(h)
	if len(h) > MaxTarget {
		return "", "", fmt.Errorf("%w: a handle has at most %d characters", ErrBadTarget, MaxTarget)
	}
	h = strings.TrimPrefix(strings.TrimPrefix(h, "acct:"), "@")
	res, perr := activitypub.ParseResource("acct:" + h)
	if perr != nil || res.User == "" || res.Host == "" || strings.ContainsAny(h, "/?#") {
		return "", "", fmt.Errorf("%w: write a handle as you@your.instance", ErrBadTarget)
	}
	return res.User, res.Host, nil
}

// Finger reads user@host's WebFinger answer through the client (unsigned, as everybody
// fetches WebFinger).
func Finger(ctx context.Context, c *activitypub.Client, user, host string) (*activitypub.JRD, error) {
	jrd, err := c.WebFinger(ctx, "acct:"+user+"@"+host)
	if err != nil {
		return nil, fmt.Errorf("WebFinger of %s@%s: %w", user, host, err)
	}
	return jrd, nil
}

// ID returns the URL to fetch for t: t itself, or the ActivityPub self link of the
// handle's WebFinger answer.
func ID(ctx context.Context, c *activitypub.Client, t Target) (string, error) {
	if !t.IsHandle() {
		return t.URL, nil
	}
	jrd, err := Finger(ctx, c, t.User, t.Host)
	if err != nil {
		return "", err
	}
	id := jrd.SelfLink()
	if id == "" {
		return "", fmt.Errorf("WebFinger of %s@%s: %w: no ActivityPub self link", t.User, t.Host, activitypub.ErrNotFound)
	}
	return id, nil
}

// Result is one looked-up document.
type Result struct {
	// Target is what was asked for, as parsed.
	Target string `json:"target"`
	// ID is the document's id (the URL it was served from).
	ID string `json:"id"`
	// Type lists the document's types.
	Type []string `json:"type"`
	// Actor says whether the document is an actor one can follow.
	Actor bool `json:"actor"`
	// AttributedTo is the author of an object that is not an actor, when it names one.
	AttributedTo string `json:"attributedTo,omitempty"`
	// Document is the verified document as served (at most the client's body cap).
	Document json.RawMessage `json:"document"`
	// Object is the decoded document.
	Object *activitypub.Object `json:"-"`
}

// Resolve looks target up: parse it, refuse an address the network guard never
// reaches before any request, resolve a handle with WebFinger, and fetch the document,
// signed by signer when it is set (peers in authorized-fetch mode show the whole
// document only to a signed fetch).
func Resolve(ctx context.Context, c *activitypub.Client, target string, signer *activitypub.Signer) (*Result, error) {
	t, err := Parse(target)
	if err != nil {
		return nil, err
	}
	if !t.IsHandle() {
		if err := CheckURL(c, t.URL); err != nil {
			return nil, err
		}
	}
	id, err := ID(ctx, c, t)
	if err != nil {
		return nil, err
	}
	obj, err := c.FetchObject(ctx, id, signer)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", id, err)
	}
	raw, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	r := &Result{Target: t.String(), ID: obj.ID, Type: obj.Type, Actor: IsActor(obj), Document: raw, Object: obj}
	if ids := obj.AttributedTo.IDs(); !r.Actor && len(ids) > 0 {
		r.AttributedTo = ids[0]
	}
	return r, nil
}

// CheckURL refuses, without any request, a URL the client's network guard would refuse
// (a scheme, credentials, a literal special address); a host name that resolves to a
// refused address is refused by the guard's dialer, before a byte is sent.
func CheckURL(c *activitypub.Client, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadTarget, err)
	}
	if err := c.Guard().CheckURL(u); err != nil {
		return &activitypub.Error{Kind: activitypub.KindForbidden, Host: u.Hostname(), Status: http.StatusForbidden, Err: err, Msg: "not fetched"}
	}
	return nil
}

// actorTypes are the types of actors one can follow: ActivityStreams' and ForgeFed's.
var actorTypes = []string{"Person", "Service", "Application", "Group", "Organization",
	"Repository", "Project", "Team", "TicketTracker", "PatchTracker"}

// IsActor reports whether o is an actor one can follow: an actor type and an inbox.
func IsActor(o *activitypub.Object) bool {
	if o.Inbox == "" {
		return false
	}
	for _, t := range actorTypes {
		if o.Type.Has(t) {
			return true
		}
	}
	return false
}

// NotAnActorError says a document that should be an actor is another kind of object.
type NotAnActorError struct {
	ID, AttributedTo string
	Type             []string
}

func (e *NotAnActorError) Error() string {
	msg := fmt.Sprintf("%s is a %s, not an actor", e.ID, strings.Join(e.Type, "/"))
	if len(e.Type) == 0 {
		msg = fmt.Sprintf("%s has no type: not an actor", e.ID)
	}
	if e.AttributedTo != "" {
		msg += "; its author is " + e.AttributedTo
	}
	return msg
}

// RequireActor returns a *NotAnActorError unless r is an actor.
func (r *Result) RequireActor() error {
	return RequireActor(r.Object)
}

// RequireActor returns a *NotAnActorError naming o's type and author unless o is an actor
// (IsActor).
func RequireActor(o *activitypub.Object) error {
	if IsActor(o) {
		return nil
	}
	e := &NotAnActorError{ID: o.ID, Type: o.Type}
	if ids := o.AttributedTo.IDs(); len(ids) > 0 {
		e.AttributedTo = ids[0]
	}
	return e
}

// Status is the HTTP status an endpoint answers a failed lookup with: 400 for what was
// asked (not a URL nor a handle, an address the network guard refuses: nothing was
// fetched), 404 when the remote side has no such document, 502 for everything the remote
// side did wrong (down, an error status, a document over the body cap, not served from
// its own id, not JSON).
func Status(err error) int {
	var e *activitypub.Error
	switch {
	case errors.Is(err, ErrBadTarget):
		return http.StatusBadRequest
	case errors.As(err, &e) && e.Kind == activitypub.KindForbidden:
		return http.StatusBadRequest
	case errors.As(err, &e) && e.Kind == activitypub.KindNotFound:
		return http.StatusNotFound
	default:
		return http.StatusBadGateway
	}
}
