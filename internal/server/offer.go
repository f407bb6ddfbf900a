package server

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// Limits of what a ticket or a comment from the Fediverse may hold (docs/forgefed.md).
// They are below the inbox's 1 MiB, so that an oversized ticket is refused with 413 and
// a Reject that says why, instead of a forge error later.
const (
	// maxTicketTitle is Gitea's and Forgejo's limit of an issue title, in characters.
	maxTicketTitle = 255
	// maxTicketBody bounds an issue or comment body, in bytes (GitHub's is 65536).
	maxTicketBody = 64 << 10
)

// titlePolicy reduces an HTML summary to its text.
var titlePolicy = bluemonday.StrictPolicy()

// onOffer handles Offer{Ticket} (ForgeFed: opening a ticket): the tracker named by target
// (or the personal inbox's owner) must be a local actor that takes tickets; the ticket is
// checked, queued as a forge write keyed by the Offer's id, and answered with Accept (its
// result the new Ticket) once the forge wrote it, or with Reject now when refused.
// Offers of anything else are filed for their addressees.
func (f *federation) onOffer(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	la, err := f.offerTracker(ctx, act, in.recipient)
	if err != nil {
		return nil, err
	}
	obj := act.Object.Object
	if la == nil || (obj != nil && !obj.Type.Has(activitypub.TypeTicket)) {
		return f.addressees(ctx, act, in.recipient)
	}
	if obj == nil {
		return nil, refuse(http.StatusBadRequest, nil, "Offer %s names its Ticket by IRI; embed the Ticket", act.ID)
	}
	actorID := act.Actor.ID()
	if ids := obj.AttributedTo.IDs(); len(ids) > 1 || (len(ids) == 1 && ids[0] != actorID) {
		return nil, refuse(http.StatusForbidden, nil, "the Ticket of Offer %s is attributed to %v, not to its sender %s", act.ID, ids, actorID)
	}
	if mro := mergeRequestOffer(obj); mro != nil {
		return f.onMergeRequestOffer(ctx, act, la, obj, mro)
	}
	reject := func(status int, reason string) ([]string, error) {
		f.log.Info("rejecting an offered ticket", "actor", la.obj.Name, "offer", act.ID, "from", actorID, "reason", reason)
		if err := f.rejectOfferOf(ctx, la, act, reason); err != nil {
			return nil, err
		}
		if status != 0 {
			return nil, refuse(status, nil, "%s", reason)
		}
		return []string{la.urls.ID}, nil
	}
	if ok, why := takesTickets(la.obj); !ok {
		return reject(0, why)
	}
	title := ticketTitle(obj)
	body, format := noteBody(obj)
	switch {
	case title == "":
		return reject(http.StatusBadRequest, "the Ticket has no name or summary to be its title")
	case utf8.RuneCountInString(title) > maxTicketTitle:
		return reject(http.StatusRequestEntityTooLarge, "the Ticket's title is longer than 255 characters")
	case len(body) > maxTicketBody:
		return reject(http.StatusRequestEntityTooLarge, "the Ticket's text is larger than 64 KiB")
	}
	author, inbox, err := f.remoteAuthor(ctx, la, actorID)
	if err != nil {
		return nil, err
	}
	objectID := obj.ID
	if objectID == "" {
		objectID = act.ID
	}
	err = f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindIssue,
		Ticket: &forge.Ticket{Title: title, Body: body, Format: format, Author: author, ObjectID: objectID},
		Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: actorID, Inbox: inbox, ObjectID: obj.ID}})
	if err != nil {
		return nil, err
	}
	return []string{la.urls.ID}, nil
}

// offerTracker finds the local actor an Offer is for: its target, else the personal
// inbox's owner, else its one local addressee. nil means the Offer is not for a tracker
// here (a target on another server); a target that looks like one of our actors but is
// not is a 404, as for Follow.
func (f *federation) offerTracker(ctx context.Context, act *activitypub.Object, recipient *localActor) (*localActor, error) {
	if target := act.Target.ID(); target != "" {
		la, err := f.actors.byIRI(ctx, target)
		if errors.Is(err, errNotLocal) {
			if base, _, berr := f.actors.baseURL(ctx); berr == nil && sameOrigin(base, target) {
				return nil, refuse(http.StatusNotFound, nil, "Offer to %q, which is not an actor here", target)
			}
			return nil, nil
		}
		return la, err
	}
	if recipient != nil {
		return recipient, nil
	}
	ids, err := f.addressees(ctx, act, nil)
	if err != nil || len(ids) != 1 {
		return nil, err
	}
	la, err := f.actors.byIRI(ctx, ids[0])
	if errors.Is(err, errNotLocal) {
		return nil, nil
	}
	return la, err
}

// rejectOffer answers an Offer from a host the policies refuse with a signed Reject, as a
// Follow is, when it names a tracker here.
func (f *federation) rejectOffer(ctx context.Context, act *activitypub.Object, reason string) error {
	la, err := f.offerTracker(ctx, act, nil)
	if err != nil {
		return err
	}
	if la == nil {
		return refuse(http.StatusForbidden, nil, "%s is not allowed to federate with this server", hostOf(act.Actor.ID()))
	}
	return f.rejectOfferOf(ctx, la, act, reason)
}

// rejectOfferOf publishes Reject{Offer} with a reason to the offerer's inbox.
func (f *federation) rejectOfferOf(ctx context.Context, la *localActor, act *activitypub.Object, reason string) error {
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, act.Actor.ID(), signer, false)
	if err != nil {
		return err
	}
	return f.publish(ctx, la, offerAnswer("Reject", la.urls.ID, act.ID, act.Actor.ID(), reason), store.Direct, []Recipient{{Inbox: ra.Inbox}})
}

// offerAnswer builds Accept or Reject of an Offer, with a deterministic id (one answer
// per Offer however often it arrives) and the reason as summary and content.
func offerAnswer(kind, localID, offerID, offererID, reason string) *activitypub.Object {
	a := activitypub.NewActivity(kind, activityID(localID, kind, offerID), localID, activitypub.IRIRef(offerID), activitypub.IRIRefs(offererID), nil)
	if reason != "" {
		a.Summary = reason
		a.Content = "<p>" + html.EscapeString(reason) + "</p>"
	}
	return a
}

func iriRef(id string) activitypub.Ref { return activitypub.IRIRef(id) }

// remoteAuthor is how the forge credits a remote actor (handle, link, name), and the
// actor's inbox, from the document the signature check just cached.
func (f *federation) remoteAuthor(ctx context.Context, la *localActor, actorID string) (forge.RemoteAuthor, string, error) {
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return forge.RemoteAuthor{}, "", err
	}
	ra, err := f.remoteActor(ctx, actorID, signer, false)
	if err != nil {
		return forge.RemoteAuthor{}, "", err
	}
	a := forge.RemoteAuthor{URL: actorID}
	if doc, err := activitypub.DecodeObject(ra.Raw); err == nil {
		if doc.PreferredUsername != "" {
			a.Handle = "@" + doc.PreferredUsername + "@" + hostOf(actorID)
		}
		a.Name = doc.Name
		if urls := doc.URL.IDs(); len(urls) > 0 && validHTTPURL(urls[0]) {
			a.URL = urls[0]
		}
	}
	return a, ra.Inbox, nil
}

// ticketTitle is the Ticket's name, else its summary reduced to one line of text.
func ticketTitle(o *activitypub.Object) string {
	t := o.Name
	if strings.TrimSpace(t) == "" {
		t = html.UnescapeString(titlePolicy.Sanitize(o.Summary))
	}
	return strings.Join(strings.Fields(t), " ")
}

// noteBody is what a Ticket or Note says, in the form the forge writer takes: its
// Markdown source when it has one, else its HTML content (sanitised by the writer), else
// plain text.
func noteBody(o *activitypub.Object) (string, forge.Format) {
	if s := o.Source; s != nil && strings.TrimSpace(s.Content) != "" && strings.HasPrefix(s.MediaType, "text/markdown") {
		return s.Content, forge.FormatMarkdown
	}
	if strings.HasPrefix(o.MediaType, "text/markdown") {
		return o.Content, forge.FormatMarkdown
	}
	if o.Content != "" {
		return o.Content, forge.FormatHTML
	}
	if s := o.Source; s != nil {
		return s.Content, forge.FormatPlain
	}
	return "", forge.FormatPlain
}

// hostOf is an IRI's host, "" when it has none.
func hostOf(iri string) string {
	u, err := url.Parse(iri)
	if err != nil {
		return ""
	}
	return u.Host
}
