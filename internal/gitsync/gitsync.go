// Package gitsync mirrors a branch of a repository on another instance's forge (Alice's
// fork on forge B) into the forge Fedforge fronts (Bob's repository on forge A), under a
// federated branch name, for cross-instance merge requests (issue 14). It runs Debian's
// `git` binary in a scrubbed environment, in a throwaway directory, and sends all of git's
// traffic through a loopback proxy that dials with the outbound network guard
// (internal/netguard) and counts the bytes the remote sends, so that a clone URL on a
// refused address, a branch larger than the cap or a remote that never answers fails
// before anything is pushed. It reports what a ForgeFed Push and a merge request need: the
// old and new head, the commits between them and the merge base against the target branch,
// with a clean-merge check. docs/decisions.md ("Git mirroring of federated branches") says
// why it is built this way.
package gitsync

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/fedforge/fedforge/internal/netguard"
)

// Errors a caller maps to a Reject reason; every error of Mirror wraps at most one of them
// (or netguard.ErrRefused for a refused address), with the host it concerns.
var (
	// ErrTimeout: the operation did not finish within Config.Timeout (a remote that never
	// answers, or answers too slowly).
	ErrTimeout = errors.New("git operation timed out")
	// ErrNoBranch: the source branch or the target's base branch does not exist.
	ErrNoBranch = errors.New("branch not found")
	// ErrDiverged: the update is not a fast-forward and the federated branch is not where
	// the caller last put it (someone committed to it on the own forge), so it is kept.
	ErrDiverged = errors.New("federated branch has diverged")
	// ErrConflict: Request.RequireMergeable was set and the branch does not merge cleanly
	// into the base branch (or shares no history with it).
	ErrConflict = errors.New("branch does not merge cleanly")
)

// Config configures a Syncer. Zero values take the defaults in New.
type Config struct {
	// Source guards connections to other instances' forges (clone URLs from remote input).
	Source *netguard.Guard
	// Target guards connections to the own forge; it is typically built from the same
	// FederationServer's allowed CIDRs as the forge API client's guard.
	Target *netguard.Guard
	// MaxFetchBytes caps the bytes the source forge may send in one Mirror (refs
	// advertisement and pack), default 64 MiB.
	MaxFetchBytes int64
	// Timeout bounds a whole Mirror, default 2 minutes.
	Timeout time.Duration
	// MaxCommits bounds Result.Commits, default 250 (newest first).
	MaxCommits int
	// Git is the git binary, default the one on PATH (Debian's /usr/bin/git).
	Git string
	// CAFile is a PEM bundle git trusts for https instead of the system's
	// (/etc/ssl/certs/ca-certificates.crt on Debian): a private CA, or a test's. git does
	// TLS itself, end to end through the proxy's tunnel, so the guard's TLSConfig does not
	// apply to it.
	CAFile string
	// TempDir is where work directories are made (and removed), default os.TempDir().
	TempDir string
	// Log gets one record per Mirror at V(1) and failures; never tokens.
	Log logr.Logger
}

// Syncer mirrors branches; it is safe for concurrent use (each Mirror has its own work
// directory and proxy).
type Syncer struct {
	cfg Config
}

// New checks the configuration and finds git.
func New(cfg Config) (*Syncer, error) {
	if cfg.Source == nil || cfg.Target == nil {
		return nil, errors.New("gitsync: both a source and a target guard are required")
	}
	if cfg.MaxFetchBytes == 0 {
		cfg.MaxFetchBytes = 64 << 20
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxCommits == 0 {
		cfg.MaxCommits = 250
	}
	if cfg.Git == "" {
		p, err := exec.LookPath("git")
		if err != nil {
			return nil, fmt.Errorf("gitsync: git not found (apt-get install git): %w", err)
		}
		cfg.Git = p
	}
	return &Syncer{cfg: cfg}, nil
}

// Source is the branch to mirror, as the other instance announced it.
type Source struct {
	// CloneURL is the repository's http(s) clone URL on the other forge.
	CloneURL string
	// Branch is the branch name without refs/heads/.
	Branch string
	// Host and User name the federated branch: the other instance's host and the author's
	// user name there (federated/<host>/<user>/<branch>).
	Host, User string
}

// Target is the repository on the own forge and how to write to it.
type Target struct {
	// CloneURL is the repository's http(s) clone URL on the own forge.
	CloneURL string
	// Username and Token authenticate git over HTTP (basic auth with the token as
	// password, as Gitea, Forgejo and GitLab accept). They are sent only to CloneURL.
	Username, Token string
	// BaseBranch is the branch a merge request would merge into (e.g. main).
	BaseBranch string
}

// Request is one Mirror call.
type Request struct {
	Source Source
	Target Target
	// ExpectedHead is the head the caller last mirrored ("" for none). A non-fast-forward
	// update (the author force-pushed) replaces the federated branch only when it is still
	// at ExpectedHead, so that commits added on the own forge are never thrown away.
	ExpectedHead string
	// RequireMergeable refuses (ErrConflict, nothing pushed) a branch that does not merge
	// cleanly into BaseBranch.
	RequireMergeable bool
}

// Commit is one commit of the update, as a ForgeFed Push lists it.
type Commit struct {
	Hash, Summary           string
	AuthorName, AuthorEmail string
	AuthorTime              time.Time
}

// Result says what Mirror did and what the merge request needs to know.
type Result struct {
	// Branch is the federated branch on the own forge.
	Branch string
	// OldHead is where Branch was before ("" when Mirror created it); NewHead where it is.
	OldHead, NewHead string
	// Created, Forced (not a fast-forward) and Unchanged (nothing pushed) describe the update.
	Created, Forced, Unchanged bool
	// Commits are the commits the update brought, newest first: NewHead not in OldHead
	// (not in BaseBranch either when created or forced); at most Config.MaxCommits.
	Commits []Commit
	// CommitsTruncated is set when more commits than MaxCommits came.
	CommitsTruncated bool
	// BaseHead is the head of the target's base branch the merge was checked against.
	BaseHead string
	// MergeBase is the best common ancestor of NewHead and BaseHead ("" when unrelated).
	MergeBase string
	// Mergeable is true when NewHead merges into BaseHead without conflicts; Conflicts
	// lists the conflicting paths otherwise.
	Mergeable bool
	Conflicts []string
	// FetchedBytes is what the source forge sent.
	FetchedBytes int64
}

// hostOf is the host of a clone URL for errors and logs, never its credentials.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}

// checkRequest validates everything that came from the other instance before git runs.
func (s *Syncer) checkRequest(req Request) (string, error) {
	branch, err := FederatedBranch(req.Source.Host, req.Source.User, req.Source.Branch)
	if err != nil {
		return "", err
	}
	if err := ValidateBranch(req.Target.BaseBranch); err != nil {
		return "", fmt.Errorf("target base: %w", err)
	}
	for _, c := range []struct {
		what, raw string
		guard     *netguard.Guard
	}{{"source", req.Source.CloneURL, s.cfg.Source}, {"target", req.Target.CloneURL, s.cfg.Target}} {
		u, err := url.Parse(c.raw)
		if err != nil {
			return "", fmt.Errorf("gitsync: %s clone URL: %w", c.what, err)
		}
		if err := c.guard.CheckURL(u); err != nil {
			return "", fmt.Errorf("gitsync: %s clone URL (%s): %w", c.what, u.Host, err)
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.raw, " \t\r\n") {
			return "", fmt.Errorf("gitsync: %s clone URL (%s) has a query, fragment or space", c.what, u.Host)
		}
	}
	if req.ExpectedHead != "" && !isHash(req.ExpectedHead) {
		return "", fmt.Errorf("%w: expected head %q is not a commit hash", ErrBadRef, req.ExpectedHead)
	}
	return branch, nil
}

// isHash accepts a full SHA-1 or SHA-256 object name in lower-case hex.
func isHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// classify turns a failed network run into the error a caller can map: the proxy's
// refusal or cap first, then the deadline, then a missing branch.
func classify(ctx context.Context, p *proxy, host string, err error) error {
	if perr := p.Err(); perr != nil {
		return fmt.Errorf("gitsync: %w", perr) // names the host it refused
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("gitsync: %s: %w: %v", host, ErrTimeout, err)
	}
	var gerr *gitError
	if errors.As(err, &gerr) && strings.Contains(gerr.stderr, "couldn't find remote ref") {
		return fmt.Errorf("gitsync: %s: %w: %v", host, ErrNoBranch, err)
	}
	return fmt.Errorf("gitsync: %s: %w", host, err)
}
