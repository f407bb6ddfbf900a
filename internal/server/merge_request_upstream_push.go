package server

import (
	"context"
	"errors"
	"html"
	"strconv"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/gitsync"
)

// The upstream's own pushes to a federated branch (issue 14, fork side,
// docs/merge-requests.md "Pushes by the upstream"): Bob pushed to
// federated/<B's host>/<R_B's user>/<branch> in forge A, and R_A's ForgeFed Push (target
// that Branch, context R_A) was addressed to R_B. Fedforge B never writes into Alice's
// branch (it is hers, and her forge may not let a bot push to it): it writes a comment on
// her pull request, credited to R_A, listing the commits and how to pull them from the
// upstream's clone URL. One comment per Push and pull request, keyed by both.

// maxListedCommits caps the commits a push report lists; the rest are counted.
const maxListedCommits = 20

// upstreamPush handles a Push whose target is ref, a federated branch that names one of
// our Repository actors, from the upstream that holds that actor's merge request.
// handled is false for any other Push.
func (f *federation) upstreamPush(ctx context.Context, act *activitypub.Object, ref string) (recipients []string, handled bool, err error) {
	name, ok := strings.CutPrefix(ref, "refs/heads/"+federatedBranchPrefix)
	if !ok {
		return nil, false, nil
	}
	_, rest, _ := strings.Cut(name, "/")
	user, branch, ok := strings.Cut(rest, "/")
	if !ok || user == "" || branch == "" {
		return nil, false, nil
	}
	la, err := f.actors.byName(ctx, user)
	if errors.Is(err, errNotLocal) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	if want, err := gitsync.FederatedBranch(hostOf(la.urls.ID), user, branch); err != nil || "refs/heads/"+want != ref {
		return nil, false, nil // another instance's actor of the same name
	}
	sender := act.Actor.ID()
	open, err := f.store.OpenOfferedMergeRequestsFrom(ctx, la.urls.ID, branch)
	if err != nil {
		return nil, false, err
	}
	fedBranch := strings.TrimPrefix(ref, "refs/heads/")
	for _, m := range open {
		if m.UpstreamID != sender || m.TicketID == "" {
			continue
		}
		author, _, err := f.remoteAuthor(ctx, la, sender)
		if err != nil {
			return nil, true, err
		}
		clone, _, _, err := f.originRepository(ctx, la, sender)
		if err != nil {
			return nil, true, err
		}
		body := upstreamPushReport(act, m.UpstreamID, m.TicketID, fedBranch, m.Head, clone)
		key := act.ID + "#pr-" + strconv.FormatInt(m.Number, 10)
		if err := f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindComment, Number: m.Number, NoteID: act.ID,
			Comment: &forge.Comment{Body: body, Format: forge.FormatHTML, Author: author, ObjectID: act.ID},
			Origin:  forgewrite.Origin{ActivityID: key, ActorID: sender, ObjectID: act.ID, TicketID: m.TicketID}}); err != nil {
			return nil, true, err
		}
		f.log.Info("upstream push to a federated branch reported on the offered pull request", "actor", la.urls.ID,
			"number", m.Number, "branch", fedBranch, "host", hostOf(sender))
		recipients = append(recipients, la.urls.ID)
	}
	return recipients, len(recipients) > 0, nil
}

// upstreamPushReport is the comment: who pushed, the commits (short hash, linked when
// the Commit has an http(s) url, and title), and the git command that takes them.
func upstreamPushReport(act *activitypub.Object, upstream, ticket, fedBranch, head, clone string) string {
	var items []*activitypub.Object
	total := 0
	if c := act.Object.Object; c != nil {
		refs := c.OrderedItems
		if len(refs) == 0 {
			refs = c.Items
		}
		for _, r := range refs {
			if r.Object != nil && r.Object.Hash != "" {
				items = append(items, r.Object)
			}
		}
		if c.TotalItems != nil {
			total = *c.TotalItems
		}
	}
	total = max(total, len(items))
	var b strings.Builder
	b.WriteString("<p>The upstream " + htmlLink(upstream, upstream) + " pushed ")
	switch total {
	case 0:
		b.WriteString("to")
	case 1:
		b.WriteString("1 commit to")
	default:
		b.WriteString(strconv.Itoa(total) + " commits to")
	}
	b.WriteString(" <code>" + html.EscapeString(fedBranch) + "</code>, the branch of " + htmlLink(ticket, "its merge request") + ":</p><ul>")
	for i, c := range items {
		if i == maxListedCommits {
			b.WriteString("<li>… and " + strconv.Itoa(total-maxListedCommits) + " more</li>")
			break
		}
		hash := html.EscapeString(truncate(c.Hash, 12))
		if u := firstURL(c); u != "" {
			hash = htmlLink(u, truncate(c.Hash, 12))
		}
		b.WriteString("<li><code>" + hash + "</code> " + html.EscapeString(cutRunes(stripTags(c.Summary), 200)) + "</li>")
	}
	if act.HashAfter != "" && len(items) == 0 {
		b.WriteString("<li><code>" + html.EscapeString(truncate(act.HashAfter, 12)) + "</code></li>")
	}
	b.WriteString("</ul>")
	if clone != "" {
		b.WriteString("<p>This pull request's branch is not changed. To take the commits into it: <code>git pull " +
			html.EscapeString(clone) + " " + html.EscapeString(fedBranch) + "</code> on <code>" + html.EscapeString(head) + "</code>, then push.</p>")
	}
	return b.String()
}

// cutRunes bounds s to n runes (a commit title from another instance may be long).
func cutRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
