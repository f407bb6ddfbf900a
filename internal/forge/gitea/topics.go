package gitea

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
)

// ReadTopics reads the topics of a public repository from the forge's API, anonymously,
// for a `repository` created event whose payload was made before the topics were set (a
// repository generated from a template gets its topics a moment after Gitea queued the
// event). The forge's base URL is the repository's page without its path, as Gitea
// builds it; hc is the guarded client of forge.NewAPIClient. A private repository, which
// an anonymous call cannot see, answers 404: such repositories are not published anyway.
func ReadTopics(ctx context.Context, hc *http.Client, repo forge.Repository, userAgent string) ([]string, error) {
	u, err := url.Parse(repo.WebURL)
	base, found := strings.CutSuffix(strings.TrimRight(repo.WebURL, "/"), "/"+repo.FullName)
	if err != nil || u.Host == "" || !found {
		return nil, fmt.Errorf("gitea: repository page %q does not end in %q", repo.WebURL, repo.FullName)
	}
	owner, name, err := splitProject(u.Host, repo.FullName)
	if err != nil {
		return nil, err
	}
	w := &Writer{a: Access{URL: base, HTTPClient: hc, UserAgent: userAgent}, host: u.Host}
	c, err := sdk.NewClient(base, sdk.SetHTTPClient(hc), sdk.SetContext(ctx), sdk.SetGiteaVersion(""), sdk.SetUserAgent(userAgent))
	if err != nil {
		return nil, w.fail("building the API client", nil, err)
	}
	topics, resp, err := c.ListRepoTopics(owner, name, sdk.ListRepoTopicsOptions{})
	if err != nil {
		return nil, w.fail("reading the topics of "+repo.FullName, resp, err)
	}
	return topics, nil
}
