package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/gitsync"
)

// The upstream side of cross-instance merge requests (issue 14, docs/merge-requests.md):
// an Offer{Ticket} whose Ticket carries an Offer of a Branch (ForgeFed "Open" of a merge
// request) to a Repository actor with spec.mergeRequests.accept. What can be checked
// without git is checked here and refused at once with a Reject; the rest (the fetch, the
// push, the pull request) is a durable forge write (merge_request_write.go) answered with
// Accept or Reject when it is done.

// mergeRequestOffer returns the Offer a Ticket carries in its attachment when the Ticket
// is a merge request (an Offer with an origin), else nil.
func mergeRequestOffer(t *activitypub.Object) *activitypub.Object {
	for _, a := range t.Attachment {
		if o := a.Object; o != nil && o.Type.Has(activitypub.TypeOffer) && !o.Origin.IsZero() {
			return o
		}
	}
	return nil
}

// takesMergeRequests says whether an actor takes merge requests from the Fediverse, and why
// not: a Repository with spec.forge on Gitea or Forgejo and spec.mergeRequests.accept.
func takesMergeRequests(a *fedv1.FederatedActor) (bool, string) {
	switch {
	case a.Spec.Type != fedv1.ActorRepository:
		return false, "this actor is not a Repository and takes no merge requests"
	case a.Spec.Forge == nil:
		return false, "this actor fronts no forge project and takes no merge requests"
	case a.Spec.Forge.Type != fedv1.ForgeGitea && a.Spec.Forge.Type != fedv1.ForgeForgejo:
		return false, "merge requests cannot be opened in " + string(a.Spec.Forge.Type) + " forges yet"
	case a.Spec.MergeRequests == nil || !a.Spec.MergeRequests.Accept:
		return false, "this repository does not accept merge requests from the Fediverse"
	}
	return true, ""
}

// branchName is a Branch's name: its ref without refs/heads/, else its name. ok is false
// for a ref outside refs/heads/ (a tag is no merge request).
func branchName(b *activitypub.Object) (string, bool) {
	if b.Ref != "" {
		name, ok := strings.CutPrefix(b.Ref, "refs/heads/")
		return name, ok
	}
	return b.Name, true
}

// onMergeRequestOffer handles an offered merge request for la. Every refusal is a Reject
// with the reason and a Warning Event on the actor; a malformed Offer is also answered
// with a 4xx.
func (f *federation) onMergeRequestOffer(ctx context.Context, act *activitypub.Object, la *localActor, ticket, offer *activitypub.Object) ([]string, error) {
	actorID := act.Actor.ID()
	reject := func(status int, reason string) ([]string, error) {
		f.log.Info("rejecting an offered merge request", "actor", la.obj.Name, "offer", act.ID, "from", actorID, "host", hostOf(actorID), "reason", reason)
		f.event(la.obj, true, fedv1.EventMergeRequestRejected, fedv1.ActionRefuse, "Merge request %s from %s rejected: %s", act.ID, actorID, truncate(reason, 300))
		if err := f.rejectOfferOf(ctx, la, act, reason); err != nil {
			return nil, err
		}
		if status != 0 {
			return nil, refuse(status, nil, "%s", reason)
		}
		return []string{la.urls.ID}, nil
	}
	if ok, why := takesMergeRequests(la.obj); !ok {
		return reject(0, why)
	}
	title := ticketTitle(ticket)
	body, format := noteBody(ticket)
	switch {
	case title == "":
		return reject(http.StatusBadRequest, "the merge request has no name or summary to be its title")
	case utf8.RuneCountInString(title) > maxTicketTitle:
		return reject(http.StatusRequestEntityTooLarge, "the merge request's title is longer than 255 characters")
	case len(body) > maxTicketBody:
		return reject(http.StatusRequestEntityTooLarge, "the merge request's text is larger than 64 KiB")
	}
	origin := offer.Origin.Object
	if origin == nil || !origin.Type.Has(activitypub.TypeBranch) {
		return reject(http.StatusBadRequest, "the merge request's origin must be an embedded Branch")
	}
	if c := origin.ASContext.ID(); c != actorID {
		return reject(http.StatusForbidden, fmt.Sprintf("the origin Branch belongs to %q, not to the offering actor %s", c, actorID))
	}
	branch, ok := branchName(origin)
	if !ok {
		return reject(http.StatusUnprocessableEntity, fmt.Sprintf("bad ref name: the origin %q is not a branch (refs/heads/...)", origin.Ref))
	}
	if err := gitsync.ValidateBranch(branch); err != nil {
		return reject(http.StatusUnprocessableEntity, err.Error())
	}
	target := ""
	if tb := offer.Target.Object; tb != nil {
		if c := tb.ASContext.ID(); c != "" && c != la.urls.ID {
			return reject(http.StatusBadRequest, fmt.Sprintf("the target Branch belongs to %q, not to %s", c, la.urls.ID))
		}
		name, ok := branchName(tb)
		if !ok {
			return reject(http.StatusUnprocessableEntity, fmt.Sprintf("bad ref name: the target %q is not a branch (refs/heads/...)", tb.Ref))
		}
		if name != "" {
			if err := gitsync.ValidateBranch(name); err != nil {
				return reject(http.StatusUnprocessableEntity, "target: "+err.Error())
			}
		}
		target = name
	}
	cloneURL, user, why, err := f.originRepository(ctx, la, actorID)
	if err != nil {
		return nil, err
	}
	if why != "" {
		return reject(0, why)
	}
	host := hostOf(actorID)
	if _, err := gitsync.FederatedBranch(host, user, branch); err != nil {
		return reject(http.StatusUnprocessableEntity, err.Error())
	}
	author, inbox, err := f.remoteAuthor(ctx, la, actorID)
	if err != nil {
		return nil, err
	}
	objectID := ticket.ID
	if objectID == "" {
		objectID = act.ID
	}
	err = f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindMergeRequest,
		MergeRequest: &forgewrite.MergeRequest{Title: title, Body: body, Format: format, Author: author, ObjectID: objectID,
			CloneURL: cloneURL, OriginRef: "refs/heads/" + branch, Branch: branch, Host: host, User: user, TargetBranch: target},
		Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: actorID, Inbox: inbox, ObjectID: ticket.ID}})
	if err != nil {
		return nil, err
	}
	return []string{la.urls.ID}, nil
}

// originRepository reads the offering actor's document (cached, else a signed fetch as for
// every remote actor) for its clone URL and user name. why is the refusal when the document
// says nothing usable or the clone URL is one the network guard refuses.
func (f *federation) originRepository(ctx context.Context, la *localActor, actorID string) (cloneURL, user, why string, err error) {
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return "", "", "", err
	}
	ra, err := f.remoteActor(ctx, actorID, signer, false)
	if err != nil {
		return "", "", "", err
	}
	doc, err := activitypub.DecodeObject(ra.Raw)
	if err != nil {
		return "", "", "the offering actor's document cannot be read", nil
	}
	for _, c := range doc.CloneURI.IDs() {
		if validHTTPURL(c) {
			cloneURL = c
			break
		}
	}
	if cloneURL == "" {
		return "", "", "the offering actor " + actorID + " has no http(s) cloneUri to fetch the branch from", nil
	}
	u, _ := url.Parse(cloneURL)
	if gerr := f.client.Guard().CheckURL(u); gerr != nil {
		return "", "", "the clone URL's address (" + u.Host + ") is refused by this server's network guard", nil
	}
	if doc.PreferredUsername == "" {
		return "", "", "the offering actor has no preferredUsername to name the federated branch", nil
	}
	return cloneURL, doc.PreferredUsername, "", nil
}
