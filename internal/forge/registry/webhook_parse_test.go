package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"net/http"
	"slices"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// checkEvent compares the fields of want that are set with got.
func checkEvent(t *testing.T, got *forge.Event, want forge.Event) {
	t.Helper()
	str := func(field, g, w string) {
		if w != "" && g != w {
			t.Errorf("%s = %q, want %q", field, g, w)
		}
	}
	str("Kind", string(got.Kind), string(want.Kind))
	str("Action", got.Action, want.Action)
	str("Version", got.Version, want.Version)
	str("Title", got.Title, want.Title)
	str("URL", got.URL, want.URL)
	str("Body", got.Body, want.Body)
	str("Ref", got.Ref, want.Ref)
	str("Branch", got.Branch, want.Branch)
	str("SourceBranch", got.SourceBranch, want.SourceBranch)
	str("Before", got.Before, want.Before)
	str("After", got.After, want.After)
	str("Identity", got.Identity, want.Identity)
	str("DeliveryID", got.DeliveryID, want.DeliveryID)
	str("Repository.Name", got.Repository.Name, want.Repository.Name)
	str("Repository.FullName", got.Repository.FullName, want.Repository.FullName)
	str("Repository.CloneURL", got.Repository.CloneURL, want.Repository.CloneURL)
	str("Actor.Name", got.Actor.Name, want.Actor.Name)
	str("Actor.Username", got.Actor.Username, want.Actor.Username)
	if want.Number != 0 && got.Number != want.Number {
		t.Errorf("Number = %d, want %d", got.Number, want.Number)
	}
	if want.TotalCommits != 0 && got.TotalCommits != want.TotalCommits {
		t.Errorf("TotalCommits = %d, want %d", got.TotalCommits, want.TotalCommits)
	}
	if !want.Time.IsZero() && !got.Time.Equal(want.Time) {
		t.Errorf("Time = %v, want %v", got.Time, want.Time)
	}
	if want.Labels != nil && !slices.Equal(got.Labels, want.Labels) {
		t.Errorf("Labels = %q, want %q", got.Labels, want.Labels)
	}
	if got.Identity == "" {
		t.Error("event has no identity")
	}
}

func TestParseWebhookRealPayloads(t *testing.T) {
	for name, tc := range forgetest.Payloads {
		t.Run(name, func(t *testing.T) {
			body := forgetest.Read(t, tc.File)
			ev, err := ParseWebhook(tc.Forge, forgetest.SignedHeaders(tc.Forge, tc.Event, body, forgetest.Secret), body, forgetest.Secret)
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if ev.Forge != tc.Forge {
				t.Errorf("Forge = %q, want %q", ev.Forge, tc.Forge)
			}
			checkEvent(t, ev, tc.Want)
		})
	}
}

// TestParseWebhookAuthentication proves each forge's authentication: the right secret
// in the right header passes, anything else is ErrUnauthorized, before the payload is
// even looked at.
func TestParseWebhookAuthentication(t *testing.T) {
	gitlabBody := forgetest.Read(t, "gitlab/release.json")
	giteaBody := forgetest.Read(t, "gitea/release_published.json")
	githubBody := forgetest.Read(t, "github/release_published.json")
	tests := map[string]struct {
		forge  fedv1.SourceType
		body   []byte
		header func(h http.Header)
		secret []byte
		ok     bool
	}{
		"gitlab valid":               {fedv1.SourceGitLab, gitlabBody, nil, forgetest.Secret, true},
		"gitlab secret with newline": {fedv1.SourceGitLab, gitlabBody, nil, append(append([]byte{}, forgetest.Secret...), '\n'), true},
		"gitlab wrong token":         {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(forgetest.HeaderGitLabToken, "nope") }, forgetest.Secret, false},
		"gitlab token prefix":        {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(forgetest.HeaderGitLabToken, string(forgetest.Secret[:5])) }, forgetest.Secret, false},
		"gitlab missing token":       {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Del(forgetest.HeaderGitLabToken) }, forgetest.Secret, false},
		"gitlab empty secret":        {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(forgetest.HeaderGitLabToken, "") }, nil, false},
		"gitea valid":                {fedv1.SourceGitea, giteaBody, nil, forgetest.Secret, true},
		"gitea body changed":         {fedv1.SourceGitea, append([]byte(" "), giteaBody...), nil, forgetest.Secret, false},
		"gitea missing signature":    {fedv1.SourceGitea, giteaBody, func(h http.Header) { h.Del(forgetest.HeaderGiteaSignature) }, forgetest.Secret, false},
		"gitea forgejo header only": {fedv1.SourceGitea, giteaBody, func(h http.Header) {
			h.Set(forgetest.HeaderForgejoSignature, h.Get(forgetest.HeaderGiteaSignature))
			h.Del(forgetest.HeaderGiteaSignature)
		}, forgetest.Secret, false},
		"gitea signature not hex":   {fedv1.SourceGitea, giteaBody, func(h http.Header) { h.Set(forgetest.HeaderGiteaSignature, "zz") }, forgetest.Secret, false},
		"forgejo valid":             {fedv1.SourceForgejo, giteaBody, nil, forgetest.Secret, true},
		"forgejo gitea header only": {fedv1.SourceForgejo, giteaBody, func(h http.Header) { h.Del(forgetest.HeaderForgejoSignature) }, forgetest.Secret, true},
		"forgejo wrong key": {fedv1.SourceForgejo, giteaBody, func(h http.Header) {
			h.Set(forgetest.HeaderForgejoSignature, forgetest.HMACHex(giteaBody, []byte("other")))
		}, forgetest.Secret, false},
		"github valid": {fedv1.SourceGitHub, githubBody, nil, forgetest.Secret, true},
		"github without prefix": {fedv1.SourceGitHub, githubBody, func(h http.Header) {
			h.Set(forgetest.HeaderGitHubSignature, forgetest.HMACHex(githubBody, forgetest.Secret))
		}, forgetest.Secret, false},
		"github sha1 header only": {fedv1.SourceGitHub, githubBody, func(h http.Header) { h.Del(forgetest.HeaderGitHubSignature); h.Set("X-Hub-Signature", "sha1=0000") }, forgetest.Secret, false},
		"github signature other body": {fedv1.SourceGitHub, githubBody, func(h http.Header) {
			h.Set(forgetest.HeaderGitHubSignature, "sha256="+forgetest.HMACHex([]byte("{}"), forgetest.Secret))
		}, forgetest.Secret, false},
	}
	events := map[fedv1.SourceType]string{fedv1.SourceGitLab: "Release Hook", fedv1.SourceGitea: "release", fedv1.SourceForgejo: "release", fedv1.SourceGitHub: "release"}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Signed with the real secret; the case then spoils what it tests.
			h := forgetest.SignedHeaders(tc.forge, events[tc.forge], tc.body, forgetest.Secret)
			if name == "gitea body changed" {
				h = forgetest.SignedHeaders(tc.forge, events[tc.forge], tc.body[1:], forgetest.Secret)
			}
			if tc.header != nil {
				tc.header(h)
			}
			_, err := ParseWebhook(tc.forge, h, tc.body, tc.secret)
			if tc.ok && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if !tc.ok && !errors.Is(err, forge.ErrUnauthorized) {
				t.Fatalf("want ErrUnauthorized, got %v", err)
			}
			if !tc.ok && forge.StatusOf(err) != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", forge.StatusOf(err))
			}
		})
	}
}

// TestParseWebhookIgnored covers authentic deliveries Fedforge does not publish: they
// are ErrIgnoredEvent (answered 202), never errors that make the forge retry.
func TestParseWebhookIgnored(t *testing.T) {
	tests := map[string]struct {
		forge fedv1.SourceType
		event string
		file  string
		patch func(map[string]any)
	}{
		"github ping":                 {fedv1.SourceGitHub, "ping", "github/release_published.json", nil},
		"github tag deleted":          {fedv1.SourceGitHub, "push", "github/push_tag_deleted.json", nil},
		"github pull request labeled": {fedv1.SourceGitHub, "pull_request", "github/pull_request_closed.json", func(m map[string]any) { m["action"] = "labeled" }},
		"github release edited":       {fedv1.SourceGitHub, "release", "github/release_published.json", func(m map[string]any) { m["action"] = "edited" }},
		"github draft release":        {fedv1.SourceGitHub, "release", "github/release_published.json", func(m map[string]any) { m["release"].(map[string]any)["draft"] = true }},
		"github issue labeled":        {fedv1.SourceGitHub, "issues", "github/issues_opened.json", func(m map[string]any) { m["action"] = "labeled" }},
		"gitlab release update":       {fedv1.SourceGitLab, "Release Hook", "gitlab/release.json", func(m map[string]any) { m["action"] = "update" }},
		"gitlab branch deleted":       {fedv1.SourceGitLab, "Push Hook", "gitlab/push.json", func(m map[string]any) { m["after"] = "0000000000000000000000000000000000000000" }},
		"gitlab confidential issue":   {fedv1.SourceGitLab, "Issue Hook", "gitlab/issue.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["confidential"] = true }},
		"gitlab confidential hook":    {fedv1.SourceGitLab, "Confidential Issue Hook", "gitlab/issue.json", nil},
		"gitlab issue updated":        {fedv1.SourceGitLab, "Issue Hook", "gitlab/issue.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["action"] = "update" }},
		"gitlab merge request update": {fedv1.SourceGitLab, "Merge Request Hook", "gitlab/merge_request.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["action"] = "update" }},
		"gitlab pipeline":             {fedv1.SourceGitLab, "Pipeline Hook", "gitlab/push.json", nil},
		"gitea branch create":         {fedv1.SourceGitea, "create", "gitea/create_tag.json", func(m map[string]any) { m["ref_type"] = "branch" }},
		"gitea pull request edited":   {fedv1.SourceGitea, "pull_request", "gitea/pull_request_opened.json", func(m map[string]any) { m["action"] = "edited" }},
		"gitea issue label updated":   {fedv1.SourceGitea, "issues", "gitea/real/issues_closed.json", func(m map[string]any) { m["action"] = "label_updated" }},
		"gitea comment by fedforge":   {fedv1.SourceGitea, "issue_comment", "gitea/real/issue_comment_fedforge.json", nil},
		"gitea wiki":                  {fedv1.SourceGitea, "wiki", "gitea/push.json", nil},
		"forgejo release updated":     {fedv1.SourceForgejo, "release", "gitea/release_published.json", func(m map[string]any) { m["action"] = "updated" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := forgetest.Read(t, tc.file)
			if tc.patch != nil {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				tc.patch(m)
				body, _ = json.Marshal(m)
			}
			ev, err := ParseWebhook(tc.forge, forgetest.SignedHeaders(tc.forge, tc.event, body, forgetest.Secret), body, forgetest.Secret)
			if !errors.Is(err, forge.ErrIgnoredEvent) {
				t.Fatalf("want ErrIgnoredEvent, got event %+v, error %v", ev, err)
			}
			if forge.StatusOf(err) != http.StatusAccepted {
				t.Fatalf("status %d, want 202", forge.StatusOf(err))
			}
		})
	}
}

// TestParseWebhookMalformed covers bodies that are authentic (correctly signed) but not
// what their event type promises: 400, so that the forge's delivery log shows the error.
func TestParseWebhookMalformed(t *testing.T) {
	tests := map[string]struct {
		forge fedv1.SourceType
		event string
		body  string
	}{
		"gitlab not json":          {fedv1.SourceGitLab, "Push Hook", "ref=refs/heads/main"},
		"gitlab array":             {fedv1.SourceGitLab, "Push Hook", `[{"ref":"x"}]`},
		"gitlab release no tag":    {fedv1.SourceGitLab, "Release Hook", `{"action":"create","project":{"path_with_namespace":"a/b"}}`},
		"gitlab push wrong type":   {fedv1.SourceGitLab, "Push Hook", `{"ref": 5}`},
		"github push no repo":      {fedv1.SourceGitHub, "push", `{"ref":"refs/heads/main","after":"1"}`},
		"github release no tag":    {fedv1.SourceGitHub, "release", `{"action":"published","release":{},"repository":{"full_name":"a/b"}}`},
		"gitea truncated":          {fedv1.SourceGitea, "push", `{"ref":"refs/heads/main",`},
		"gitea deeply nested":      {fedv1.SourceGitea, "push", string(bytes.Repeat([]byte(`{"a":`), 40)) + "1" + string(bytes.Repeat([]byte(`}`), 40))},
		"forgejo issue no number":  {fedv1.SourceForgejo, "issues", `{"action":"opened","issue":{},"repository":{"full_name":"a/b"}}`},
		"gitlab issue without iid": {fedv1.SourceGitLab, "Issue Hook", `{"object_kind":"issue","object_attributes":{"action":"open"},"project":{"path_with_namespace":"a/b"}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := []byte(tc.body)
			_, err := ParseWebhook(tc.forge, forgetest.SignedHeaders(tc.forge, tc.event, body, forgetest.Secret), body, forgetest.Secret)
			if !errors.Is(err, forge.ErrMalformed) || forge.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("want ErrMalformed (400), got %v", err)
			}
		})
	}
}
