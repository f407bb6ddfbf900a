package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sdk "code.gitea.io/sdk/gitea"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
)

// Access is what a Writer needs to call one Gitea or Forgejo: the base URL users open
// (the SDK adds /api/v1), the project it fronts, a token, and the guarded HTTP client
// (forge.NewAPIClient) every call goes through.
type Access struct {
	// Type is fedv1.SourceGitea or fedv1.SourceForgejo (the same API).
	Type fedv1.SourceType
	// URL is the forge's base URL, e.g. https://codeberg.org.
	URL string
	// Project is owner/name, checked by Check.
	Project string
	// Token is an access token with read:repository and write:issue. Never logged.
	Token string
	// HTTPClient is the client from forge.NewAPIClient; required.
	HTTPClient *http.Client
	// UserAgent is sent with every call, so that forge admins see who calls.
	UserAgent string
}

// Writer writes into a Gitea or Forgejo repository with the forge's own SDK
// (code.gitea.io/sdk/gitea). It is safe for concurrent use: each call builds an SDK client
// bound to the call's context (the SDK keeps one context per client).
type Writer struct {
	a    Access
	host string
}

var (
	_ forge.Writer      = (*Writer)(nil)
	_ forge.IssueReader = (*Writer)(nil)
	_ forge.KeyFinder   = (*Writer)(nil)
)

// NewWriter checks a and returns its Writer. It makes no network call.
func NewWriter(a Access) (*Writer, error) {
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitea: forge URL %q is not an http(s) URL", a.URL)
	}
	if a.HTTPClient == nil {
		return nil, fmt.Errorf("gitea %s: no HTTP client (use forge.NewAPIClient)", u.Host)
	}
	if a.Token == "" {
		return nil, fmt.Errorf("gitea %s: empty token", u.Host)
	}
	if a.Type == "" {
		a.Type = fedv1.SourceGitea
	}
	return &Writer{a: a, host: u.Host}, nil
}

// Type is Gitea or Forgejo, as configured.
func (w *Writer) Type() fedv1.SourceType { return w.a.Type }

// repoClient is the client for one call about repo, with repo's owner and name.
func (w *Writer) repoClient(ctx context.Context, repo forge.Repository) (c *sdk.Client, owner, name string, err error) {
	if owner, name, err = splitProject(w.host, repo.FullName); err != nil {
		return nil, "", "", err
	}
	c, err = w.client(ctx)
	return c, owner, name, err
}

// client returns an SDK client for one call. SetGiteaVersion("") skips the version request
// the SDK otherwise makes when a client is built: one call costs one request.
func (w *Writer) client(ctx context.Context) (*sdk.Client, error) {
	c, err := sdk.NewClient(w.a.URL, sdk.SetToken(w.a.Token), sdk.SetHTTPClient(w.a.HTTPClient),
		sdk.SetContext(ctx), sdk.SetGiteaVersion(""), sdk.SetUserAgent(w.a.UserAgent))
	if err != nil {
		return nil, w.fail("building the API client", nil, err)
	}
	return c, nil
}

// fail turns an SDK error into a forge.APIError carrying the host and the forge's message
// (the SDK returns the message field of Gitea's JSON error as the error text).
func (w *Writer) fail(op string, resp *sdk.Response, err error) error {
	e := &forge.APIError{Host: w.host, Op: op, Message: err.Error(), Err: err}
	if resp != nil && resp.Response != nil {
		e.StatusCode = resp.StatusCode
	} else {
		var ue *url.Error
		if errors.As(err, &ue) { // the URL is ours and known: keep the cause only
			e.Message = ue.Err.Error()
		}
	}
	return e
}

// Check is the cheap authenticated probe behind the ForgeReachable condition: one GET of
// the project. It returns what the actor document shows (web page, clone URL, the parent
// when the forge says the repository is a fork). A token without read:repository, a
// wrong token (401) and a forge that is down all return a forge.APIError with the
// forge's message. Success says reading works; whether the token may write issues is
// only known when it tries (Gitea checks scopes per route).
func (w *Writer) Check(ctx context.Context) (forge.RepoInfo, error) {
	owner, name, err := splitProject(w.host, w.a.Project)
	if err != nil {
		return forge.RepoInfo{}, err
	}
	c, err := w.client(ctx)
	if err != nil {
		return forge.RepoInfo{}, err
	}
	r, resp, err := c.GetRepo(owner, name)
	if err != nil {
		return forge.RepoInfo{}, w.fail("reading repository "+w.a.Project, resp, err)
	}
	info := forge.RepoInfo{Repository: forge.Repository{Name: r.Name, FullName: r.FullName, WebURL: r.HTMLURL, CloneURL: r.CloneURL}}
	if r.Fork && r.Parent != nil {
		info.ForkedFrom = r.Parent.HTMLURL
	}
	info.OriginalURL = r.OriginalURL
	return info, nil
}

// CreateIssue opens t in repo, with the remote author credited in the body (handle and
// link) and the idempotency key as a hidden marker (see forge.Writer). Labels the
// repository does not have are dropped.
func (w *Writer) CreateIssue(ctx context.Context, repo forge.Repository, t forge.Ticket) (forge.Ref, error) {
	owner, name, err := splitProject(w.host, repo.FullName)
	if err != nil {
		return forge.Ref{}, err
	}
	if strings.TrimSpace(t.Title) == "" {
		return forge.Ref{}, fmt.Errorf("gitea %s: issue for %s has no title", w.host, t.Key)
	}
	c, err := w.client(ctx)
	if err != nil {
		return forge.Ref{}, err
	}
	opt := sdk.CreateIssueOption{Title: t.Title, Body: Attributed(t.Body, t.Format, t.Author, t.ObjectID, t.Key, "Opened")}
	if len(t.Labels) > 0 {
		if opt.Labels, err = w.labelIDs(c, owner, name, t.Labels); err != nil {
			return forge.Ref{}, err
		}
	}
	is, resp, err := c.CreateIssue(owner, name, opt)
	if err != nil {
		return forge.Ref{}, w.fail("opening an issue in "+repo.FullName, resp, err)
	}
	return forge.Ref{Number: is.Index, URL: is.HTMLURL, Created: true}, nil
}

// labelIDs maps label names to the repository's label ids, dropping unknown names.
func (w *Writer) labelIDs(c *sdk.Client, owner, name string, names []string) ([]int64, error) {
	labels, resp, err := c.ListRepoLabels(owner, name, sdk.ListLabelsOptions{ListOptions: sdk.ListOptions{PageSize: 50}})
	if err != nil {
		return nil, w.fail("listing labels of "+owner+"/"+name, resp, err)
	}
	var ids []int64
	for _, want := range names {
		for _, l := range labels {
			if strings.EqualFold(l.Name, want) {
				ids = append(ids, l.ID)
				break
			}
		}
	}
	return ids, nil
}

// Comment adds c to issue or pull request number (Gitea numbers both in one sequence).
func (w *Writer) Comment(ctx context.Context, repo forge.Repository, number int64, cm forge.Comment) (forge.Ref, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.Ref{}, err
	}
	body := Attributed(cm.Body, cm.Format, cm.Author, cm.ObjectID, cm.Key, "Written")
	out, resp, err := c.CreateIssueComment(owner, name, number, sdk.CreateIssueCommentOption{Body: body})
	if err != nil {
		return forge.Ref{}, w.fail(fmt.Sprintf("commenting on #%d of %s", number, repo.FullName), resp, err)
	}
	return forge.Ref{Number: number, ID: out.ID, URL: out.HTMLURL, Created: true}, nil
}

// CloseIssue closes issue number; closing a closed issue succeeds (Gitea answers 201
// with the issue unchanged).
func (w *Writer) CloseIssue(ctx context.Context, repo forge.Repository, number int64, _ forge.IdempotencyKey) error {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return err
	}
	closed := sdk.StateClosed
	if _, resp, err := c.EditIssue(owner, name, number, sdk.EditIssueOption{State: &closed}); err != nil {
		return w.fail(fmt.Sprintf("closing #%d of %s", number, repo.FullName), resp, err)
	}
	return nil
}

// OpenMergeRequest opens a pull request from mr.SourceBranch to mr.TargetBranch of the
// same repository (the branch was pushed with git beforehand; cross-repository pull
// requests from forks come with phase 2's fork support).
func (w *Writer) OpenMergeRequest(ctx context.Context, repo forge.Repository, mr forge.MergeRequest) (forge.Ref, error) {
	owner, name, err := splitProject(w.host, repo.FullName)
	if err != nil {
		return forge.Ref{}, err
	}
	if mr.SourceBranch == "" || mr.TargetBranch == "" || strings.TrimSpace(mr.Title) == "" {
		return forge.Ref{}, fmt.Errorf("gitea %s: merge request %s needs a title, a source and a target branch", w.host, mr.Key)
	}
	c, err := w.client(ctx)
	if err != nil {
		return forge.Ref{}, err
	}
	pr, resp, err := c.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{
		Head: mr.SourceBranch, Base: mr.TargetBranch, Title: mr.Title,
		Body: Attributed(mr.Body, mr.Format, mr.Author, mr.ObjectID, mr.Key, "Offered"),
	})
	if err != nil {
		return forge.Ref{}, w.fail(fmt.Sprintf("opening a pull request %s → %s in %s", mr.SourceBranch, mr.TargetBranch, repo.FullName), resp, err)
	}
	return forge.Ref{Number: pr.Index, URL: pr.HTMLURL, Created: true}, nil
}

// splitProject splits owner/name; Gitea has no nested namespaces.
func splitProject(host, full string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("gitea %s: project %q is not owner/name", host, full)
	}
	return owner, name, nil
}
