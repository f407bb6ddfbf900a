package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/gitsync"
	"github.com/fedforge/fedforge/internal/netguard"
	"github.com/fedforge/fedforge/internal/store"
)

// The forge writes of federated merge requests (forgewrite.Config.Git): mirror the
// origin branch into federated/<host>/<user>/<branch> with internal/gitsync, then open the
// pull request (KindMergeRequest), or mirror it again after a Push (KindMergeRequestUpdate).

// defaultMaxBranchSize is spec.mergeRequests.maxBranchSize's default (gitsync's default).
const defaultMaxBranchSize = 64 << 20

// mirrorTimeout bounds one mirror (gitsync's default); the executor's call timeout covers it.
const mirrorTimeout = 2 * time.Minute

// gitAttemptsBeforeReject is how many attempts a mirror that failed for no reason gitsync
// names (the other forge answering 5xx, a reset connection) gets before the offer is
// rejected: a few retries over about half a minute, not the week an issue write gets, since
// the other instance waits for an answer.
const gitAttemptsBeforeReject = 4

// refusal is a merge-request write refused for good, with the reason its Reject carries:
// a sentence for the other instance, without the own forge's host or git's output.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.reason }
func (r *refusal) Unwrap() error { return r.err }

// refused wraps a reason as a permanent refusal.
func refused(err error, format string, args ...any) error {
	return forgewrite.Permanent(&refusal{reason: fmt.Sprintf(format, args...), err: err})
}

// mergeWriter is the forge access of a merge-request write: the writer, the project and
// the token git pushes with.
type mergeWriter struct {
	la    *localActor
	w     *gitea.Writer
	repo  forge.Repository
	token string
}

func (t *ticketing) mergeWriter(ctx context.Context, actorID string) (*mergeWriter, error) {
	la, err := t.f.actors.byIRI(ctx, actorID)
	if errors.Is(err, errNotLocal) {
		return nil, forgewrite.Permanent(fmt.Errorf("actor %s is not served here any more", actorID))
	} else if err != nil {
		return nil, err
	}
	if ok, why := takesMergeRequests(la.obj); !ok {
		return nil, refused(nil, "%s", why)
	}
	// The writer is built here rather than with t.writer, which also asks for tickets: a
	// repository may take merge requests with spec.tickets.enabled false.
	spec := la.obj.Spec.Forge
	token, err := t.secrets.get(ctx, la.obj.Namespace, fedv1.SecretKeyReference{Name: spec.TokenSecretRef.Name, Key: tokenKey(spec.TokenSecretRef.Key)})
	if err != nil {
		return nil, fmt.Errorf("forge token of %s: %w", la.obj.Name, err)
	}
	typ := fedv1.SourceGitea
	if spec.Type == fedv1.ForgeForgejo {
		typ = fedv1.SourceForgejo
	}
	w, err := gitea.NewWriter(gitea.Access{Type: typ, URL: spec.URL, Project: spec.Project, Token: string(token),
		HTTPClient: t.hc, UserAgent: t.f.client.UserAgent()})
	if err != nil {
		return nil, forgewrite.Permanent(err)
	}
	return &mergeWriter{la: la, w: w, repo: forge.Repository{FullName: spec.Project}, token: string(token)}, nil
}

// syncer builds the mirror of one write: the other forge is reached with the server's
// outbound guard (the rules every fetch of remote input follows), the own forge with a
// guard of the same configuration (as the forge API client), and the fetch capped at the
// actor's spec.mergeRequests.maxBranchSize.
func (t *ticketing) syncer(la *localActor) (*gitsync.Syncer, int64, error) {
	g := t.f.client.Guard().Config()
	own := netguard.New(netguard.Config{AllowedCIDRs: g.AllowedCIDRs, Resolve: g.Resolve, AllowHTTP: g.AllowHTTP, TLSConfig: g.TLSConfig})
	max := int64(defaultMaxBranchSize)
	if q := la.obj.Spec.MergeRequests.MaxBranchSize; q != nil && q.Value() > 0 {
		max = q.Value()
	}
	s, err := gitsync.New(gitsync.Config{Source: t.f.client.Guard(), Target: own, MaxFetchBytes: max, Timeout: mirrorTimeout,
		Git: gitBinary(), Log: t.f.log.WithName("gitsync")})
	if err != nil {
		return nil, 0, forgewrite.Permanent(err)
	}
	return s, max, nil
}

// gitBinary is git from PATH, else Debian's /usr/bin/git: the server image's PATH is "/"
// (hack/image), and its git is where Debian installs it.
func gitBinary() string {
	if p, err := exec.LookPath("git"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/git"); err == nil {
		return "/usr/bin/git"
	}
	return "" // gitsync.New says git is missing
}

// git implements forgewrite.Config.Git.
func (t *ticketing) git(ctx context.Context, w store.ForgeWrite, op forgewrite.Op) (forge.Ref, error) {
	mw, err := t.mergeWriter(ctx, w.ActorID)
	if err != nil {
		return forge.Ref{}, err
	}
	var ref forge.Ref
	if op.Kind == forgewrite.KindMergeRequestUpdate {
		ref, err = t.updateMergeRequest(ctx, w, op, mw)
	} else {
		ref, err = t.openMergeRequest(ctx, w, op, mw)
	}
	return ref, t.forOffer(w, mw, err)
}

// forOffer keeps the own forge out of a Reject: a refusal already says why in words; the
// forge refusing a call for good (a 4xx the queue gives up on) or another permanent error
// is logged with its host and message, and the Reject says only that this repository did
// not take the merge request. Errors that are retried pass unchanged.
func (t *ticketing) forOffer(w store.ForgeWrite, mw *mergeWriter, err error) error {
	var r *refusal
	if err == nil || errors.As(err, &r) {
		return err
	}
	e, api := forge.AsAPIError(err)
	forGood := errors.Is(err, forgewrite.ErrPermanent) || (api && e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusUnauthorized && e.StatusCode != http.StatusForbidden && e.StatusCode != http.StatusRequestTimeout &&
		e.StatusCode != http.StatusConflict && e.StatusCode != http.StatusTooEarly && e.StatusCode != http.StatusTooManyRequests)
	if !forGood {
		return err
	}
	t.f.log.Info("the forge refused a merge-request write", "actor", mw.la.obj.Name, "key", w.Key, "error", err.Error())
	t.f.event(mw.la.obj, true, fedv1.EventMergeRequestRejected, fedv1.ActionRefuse, "%s %s was given up: %s", w.Kind, w.Key, truncate(err.Error(), 500))
	return refused(err, "%s", forgeRefusedReason)
}

// forgeRefusedReason is the Reject's reason when the own forge refused a write; the Event
// written by forOffer has the forge's own message.
const forgeRefusedReason = "this repository's forge did not take the merge request (its operator sees why in the actor's Events)"

// openMergeRequest mirrors the offered branch and opens the pull request. A retried write
// first looks for the pull request under its key, so that an answer lost in a crash or a
// timeout is found, not doubled.
func (t *ticketing) openMergeRequest(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, mw *mergeWriter) (forge.Ref, error) {
	mr := op.MergeRequest
	key := forge.IdempotencyKey(w.Key)
	branch, err := gitsync.FederatedBranch(mr.Host, mr.User, mr.Branch)
	if err != nil {
		return forge.Ref{}, refused(err, "%s", err.Error())
	}
	if w.Attempt > 1 {
		if ref, found, err := mw.w.FindPullByKey(ctx, mw.repo, key); err != nil {
			return forge.Ref{}, err
		} else if found {
			return ref, t.recordMergeRequest(ctx, mw, op, ref, branch, mr.TargetBranch, "")
		}
	}
	base, err := mw.w.PullBase(ctx, mw.repo)
	if err != nil {
		return forge.Ref{}, err
	}
	target := cmp.Or(mr.TargetBranch, base.DefaultBranch)
	res, err := t.mirror(ctx, w, mw, mr, base, target, "", true)
	if err != nil {
		return forge.Ref{}, err
	}
	ref, err := t.openPull(ctx, mw, forge.MergeRequest{Key: key, Title: mr.Title, Body: mr.Body, Format: mr.Format, Author: mr.Author,
		SourceBranch: res.Branch, TargetBranch: target, ObjectID: mr.ObjectID})
	if err != nil {
		return forge.Ref{}, err
	}
	return ref, t.recordMergeRequest(ctx, mw, op, ref, res.Branch, target, res.NewHead)
}

// openPull opens the pull request. Gitea records a pushed branch in its database from a
// queue, so a pull request opened right after the push may find no branch (404) for a
// moment: that is retried here for a few seconds. A pull request already open from the
// branch (409) is refused: one branch, one pull request.
func (t *ticketing) openPull(ctx context.Context, mw *mergeWriter, mr forge.MergeRequest) (forge.Ref, error) {
	for i := 0; ; i++ {
		ref, err := mw.w.OpenMergeRequest(ctx, mw.repo, mr)
		e, ok := forge.AsAPIError(err)
		switch {
		case err == nil:
			return ref, nil
		case ok && e.StatusCode == http.StatusConflict:
			return forge.Ref{}, refused(err, "a pull request from %s into %s is already open", mr.SourceBranch, mr.TargetBranch)
		case ok && e.StatusCode == http.StatusNotFound && i < 20:
			select {
			case <-ctx.Done():
				return forge.Ref{}, err
			case <-time.After(250 * time.Millisecond):
			}
		default:
			return forge.Ref{}, err
		}
	}
}

// recordMergeRequest keeps what a Push needs to find the federated branch.
func (t *ticketing) recordMergeRequest(ctx context.Context, mw *mergeWriter, op forgewrite.Op, ref forge.Ref, branch, target, head string) error {
	mr := op.MergeRequest
	return t.f.store.PutMergeRequest(ctx, store.MergeRequestRecord{ID: mw.la.urls.MergeRequest(ref.Number), ActorID: mw.la.urls.ID,
		Number: ref.Number, OfferID: op.Origin.ActivityID, OriginActor: op.Origin.ActorID, OriginRef: mr.OriginRef,
		CloneURL: mr.CloneURL, Branch: branch, TargetBranch: target, Head: head})
}

// updateMergeRequest mirrors the origin branch again after a Push, unless the pull request
// was closed or merged meanwhile. The origin's force-push replaces the federated branch
// (it is Fedforge's namespace, and the pull request follows its author's branch as a
// forge's own pull requests do) as long as the branch is where Fedforge last put it.
func (t *ticketing) updateMergeRequest(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, mw *mergeWriter) (forge.Ref, error) {
	rec, err := t.f.store.GetMergeRequest(ctx, op.Origin.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return forge.Ref{}, forgewrite.Permanent(fmt.Errorf("no merge request %s", op.Origin.TicketID))
	} else if err != nil {
		return forge.Ref{}, err
	}
	ref := forge.Ref{Number: rec.Number}
	st, err := mw.w.PullState(ctx, mw.repo, rec.Number)
	if err != nil {
		return forge.Ref{}, err
	}
	if !st.Open {
		t.f.log.V(1).Info("a Push for a closed merge request is ignored", "mergeRequest", rec.ID, "push", op.Origin.ActivityID)
		return ref, t.f.store.CloseMergeRequest(ctx, rec.ID)
	}
	base, err := mw.w.PullBase(ctx, mw.repo)
	if err != nil {
		return forge.Ref{}, err
	}
	_, user, ok := strings.Cut(strings.TrimPrefix(rec.Branch, "federated/"), "/")
	user, _, _ = strings.Cut(user, "/")
	if !ok {
		return forge.Ref{}, forgewrite.Permanent(fmt.Errorf("federated branch %q is not federated/<host>/<user>/<branch>", rec.Branch))
	}
	mr := &forgewrite.MergeRequest{CloneURL: rec.CloneURL, OriginRef: rec.OriginRef, Branch: strings.TrimPrefix(rec.OriginRef, "refs/heads/"),
		Host: hostOf(rec.OriginActor), User: user, TargetBranch: rec.TargetBranch}
	res, err := t.mirror(ctx, w, mw, mr, base, cmp.Or(rec.TargetBranch, base.DefaultBranch), rec.Head, false)
	if err != nil {
		return forge.Ref{}, err
	}
	if res.Branch != rec.Branch {
		return forge.Ref{}, forgewrite.Permanent(fmt.Errorf("mirrored %s, but the merge request's branch is %s", res.Branch, rec.Branch))
	}
	if !res.Unchanged {
		if err := t.f.store.SetMergeRequestHead(ctx, rec.ID, res.NewHead); err != nil {
			return forge.Ref{}, err
		}
		t.f.event(mw.la.obj, false, fedv1.EventMergeRequestUpdated, fedv1.ActionMirror, "Pull request #%d updated from %s: %s (%d commits%s)",
			rec.Number, rec.OriginActor, res.NewHead, len(res.Commits), map[bool]string{true: ", forced", false: ""}[res.Forced])
	}
	return ref, nil
}

// mirror runs gitsync and turns its refusals into the reasons a Reject carries.
func (t *ticketing) mirror(ctx context.Context, w store.ForgeWrite, mw *mergeWriter, mr *forgewrite.MergeRequest, base forge.PullBase, target, expected string, mergeable bool) (*gitsync.Result, error) {
	s, max, err := t.syncer(mw.la)
	if err != nil {
		return nil, err
	}
	res, err := s.Mirror(ctx, gitsync.Request{
		Source:       gitsync.Source{CloneURL: mr.CloneURL, Branch: mr.Branch, Host: mr.Host, User: mr.User},
		Target:       gitsync.Target{CloneURL: base.CloneURL, Username: base.Username, Token: mw.token, BaseBranch: target},
		ExpectedHead: expected, RequireMergeable: mergeable,
	})
	if err == nil {
		return res, nil
	}
	src := hostOf(mr.CloneURL)
	t.f.log.Info("mirroring a federated branch failed", "actor", mw.la.obj.Name, "key", w.Key, "source", src, "attempt", w.Attempt, "error", err.Error())
	switch {
	case errors.Is(err, netguard.ErrRefused):
		return nil, refused(err, "the clone URL's address (%s) is refused by this server's network guard", src)
	case errors.Is(err, gitsync.ErrTooLarge):
		return nil, refused(err, "the branch %s is larger than this repository accepts (%d bytes fetched at most)", mr.Branch, max)
	case errors.Is(err, gitsync.ErrTimeout):
		return nil, refused(err, "fetching the branch %s from %s did not finish within %s", mr.Branch, src, mirrorTimeout)
	case errors.Is(err, gitsync.ErrBadRef):
		return nil, refused(err, "%s", strings.TrimPrefix(err.Error(), "gitsync: "))
	case errors.Is(err, gitsync.ErrNoBranch) && strings.Contains(err.Error(), "base branch"):
		return nil, refused(err, "the target branch %s does not exist in this repository", target)
	case errors.Is(err, gitsync.ErrNoBranch):
		return nil, refused(err, "there is no branch %s in the repository at %s", mr.Branch, src)
	case errors.Is(err, gitsync.ErrConflict):
		why := "it shares no history with " + target
		if res != nil && len(res.Conflicts) > 0 {
			why = "conflicts in " + strings.Join(res.Conflicts, ", ")
		}
		return nil, refused(err, "the branch %s does not merge cleanly into %s: %s", mr.Branch, target, truncate(why, 300))
	case errors.Is(err, gitsync.ErrDiverged):
		name, _ := gitsync.FederatedBranch(mr.Host, mr.User, mr.Branch)
		return nil, refused(err, "the federated branch %s was changed in this repository and the new head is not a fast-forward of it", name)
	case w.Attempt >= gitAttemptsBeforeReject:
		return nil, refused(err, "the branch %s could not be fetched from %s or pushed here (%d attempts)", mr.Branch, src, w.Attempt)
	}
	return nil, err
}

// mergeRequestDone is what follows a merge-request write: the merge request's Ticket and
// its submitter as participant (so that comments, Resolve and its Undo reach the other
// instance), and the Accept naming the merge request.
func (t *ticketing) mergeRequestDone(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, ref store.ForgeRef) error {
	f := t.f
	if op.Kind != forgewrite.KindMergeRequest {
		return nil
	}
	la, err := f.actors.byIRI(ctx, w.ActorID)
	if err != nil {
		return err
	}
	ticketID := la.urls.MergeRequest(ref.Number)
	if err := f.store.PutTicket(ctx, store.TicketRecord{ID: ticketID, ActorID: la.urls.ID, Number: ref.Number,
		AuthorID: op.Origin.ActorID, OfferID: op.Origin.ActivityID, ObjectID: op.Origin.ObjectID}); err != nil {
		return err
	}
	if err := t.participate(ctx, ticketID, op.Origin.ActorID, op.Origin.Inbox); err != nil {
		return err
	}
	accept := offerAnswer("Accept", la.urls.ID, op.Origin.ActivityID, op.Origin.ActorID, "")
	accept.Result = iriRef(ticketID)
	if err := f.publish(ctx, la, accept, store.Direct, []Recipient{{Inbox: op.Origin.Inbox}}); err != nil {
		return err
	}
	f.event(la.obj, false, fedv1.EventMergeRequestOpened, fedv1.ActionMirror, "Merge request %s from %s opened as pull request #%d",
		op.Origin.ActivityID, op.Origin.ActorID, ref.Number)
	return nil
}

// mergeRequestDead tells the offerer why its merge request was not opened (Reject), and
// the operator (a Warning Event) why a merge request or an update was given up.
func (t *ticketing) mergeRequestDead(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, reason string) {
	f := t.f
	la, err := f.actors.byIRI(ctx, w.ActorID)
	if err != nil {
		return
	}
	reason = strings.TrimPrefix(reason, forgewrite.ErrPermanent.Error()+": ")
	detailed := reason == forgeRefusedReason          // forOffer recorded the Event with the forge's message
	if op.Kind == forgewrite.KindMergeRequestUpdate { // a Push has no answer
		if !detailed {
			f.event(la.obj, true, fedv1.EventMergeRequestUpdateFailed, fedv1.ActionMirror, "Push %s could not update %s: %s",
				op.Origin.ActivityID, op.Origin.TicketID, truncate(reason, 500))
		}
		return
	}
	if !detailed {
		f.event(la.obj, true, fedv1.EventMergeRequestRejected, fedv1.ActionRefuse, "Merge request %s from %s rejected: %s",
			op.Origin.ActivityID, op.Origin.ActorID, truncate(reason, 500))
	}
	if op.Origin.Inbox == "" {
		return
	}
	rej := offerAnswer("Reject", la.urls.ID, op.Origin.ActivityID, op.Origin.ActorID, truncate(reason, 500))
	if err := f.publish(ctx, la, rej, store.Direct, []Recipient{{Inbox: op.Origin.Inbox}}); err != nil {
		f.log.Info("rejecting a merge request after a failed write failed", "offer", op.Origin.ActivityID, "error", err.Error())
	}
}
