package giteatest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
)

// User is a Gitea account created for a test, with its own token, so that a test can act
// as someone other than the administrator (a forker, a stargazer, a token without rights).
type User struct {
	Name, Password string
	// Token has the scopes the test asked for.
	Token string
	// Client is an SDK client authenticated with Token.
	Client *gitea.Client
}

// CreateUser creates a user through the admin API and a token for it with the given
// scopes (gitea.AccessTokenScopeAll when none are given).
func (i *Instance) CreateUser(t testing.TB, name string, scopes ...gitea.AccessTokenScope) *User {
	t.Helper()
	password := randomHex(t, 16)
	mustChange := false
	if _, _, err := i.Client.AdminCreateUser(gitea.CreateUserOption{
		Username:           name,
		Email:              name + "@example.invalid",
		Password:           password,
		MustChangePassword: &mustChange,
	}); err != nil {
		t.Fatalf("giteatest: create user %s on %s: %v", name, i.URL, err)
	}
	if len(scopes) == 0 {
		scopes = []gitea.AccessTokenScope{gitea.AccessTokenScopeAll}
	}
	basic, err := gitea.NewClient(i.URL, gitea.SetBasicAuth(name, password))
	if err != nil {
		t.Fatalf("giteatest: SDK client for %s on %s: %v", name, i.URL, err)
	}
	tok, _, err := basic.CreateAccessToken(gitea.CreateAccessTokenOption{Name: "fedforge-test", Scopes: scopes})
	if err != nil {
		t.Fatalf("giteatest: token for %s on %s: %v", name, i.URL, err)
	}
	c, err := gitea.NewClient(i.URL, gitea.SetToken(tok.Token))
	if err != nil {
		t.Fatalf("giteatest: SDK client for %s on %s: %v", name, i.URL, err)
	}
	return &User{Name: name, Password: password, Token: tok.Token, Client: c}
}

// CreateRepo creates an empty public repository owned by the administrator, with "main"
// as its default branch, ready for a first `git push`.
func (i *Instance) CreateRepo(t testing.TB, name string) *gitea.Repository {
	t.Helper()
	repo, _, err := i.Client.CreateRepo(gitea.CreateRepoOption{Name: name, DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("giteatest: create repository %s on %s: %v", name, i.URL, err)
	}
	return repo
}

// CreateWebhook adds a Gitea-type webhook to owner/repo that POSTs JSON to target, signed
// with secret (X-Gitea-Signature, hex HMAC-SHA256 of the body), for the given events
// ("push", "issues", "issue_comment", "pull_request", "release", "fork", "star"...).
func (i *Instance) CreateWebhook(t testing.TB, owner, repo, target, secret string, events ...string) *gitea.Hook {
	t.Helper()
	hook, _, err := i.Client.CreateRepoHook(owner, repo, gitea.CreateHookOption{
		Type:   gitea.HookTypeGitea,
		Config: map[string]string{"url": target, "content_type": "json", "secret": secret},
		Events: events,
		Active: true,
	})
	if err != nil {
		t.Fatalf("giteatest: webhook on %s/%s at %s: %v", owner, repo, i.URL, err)
	}
	return hook
}

// WaitPushed waits until a push of sha to branch is visible through the API. Gitea
// updates a repository after a push in a queue: right after the first push the branch row
// exists while the repository is still marked empty, and GET /branches/{branch} answers 500
// (1.27.3 dereferences a repository it did not open), so the push is only "done" for API
// readers once the repository is not empty and the branch points at sha.
func (i *Instance) WaitPushed(t testing.TB, owner, repo, branch, sha string) *gitea.Branch {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a bound for a stuck queue, not a measurement
	var last error
	for time.Now().Before(deadline) {
		r, _, err := i.Client.GetRepo(owner, repo)
		if err == nil && !r.Empty {
			b, _, err := i.Client.GetRepoBranch(owner, repo, branch)
			if err == nil && b.Commit != nil && b.Commit.ID == sha {
				return b
			}
			last = err
			if err == nil {
				last = fmt.Errorf("branch %s at %v", branch, b.Commit)
			}
		} else if err != nil {
			last = err
		} else {
			last = errors.New("repository still empty")
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("giteatest: waiting for %s on %s/%s: %v", sha, owner, repo, t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("giteatest: push of %s to %s/%s %s not visible on %s: %v", sha, owner, repo, branch, i.URL, last)
	return nil
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("giteatest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
