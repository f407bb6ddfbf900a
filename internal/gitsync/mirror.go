package gitsync

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Local refs of the work repository.
const (
	refBase = "refs/fedforge/base" // the target's base branch
	refOld  = "refs/fedforge/old"  // the federated branch as the own forge has it
	refNew  = "refs/fedforge/new"  // the source branch
)

// Mirror brings req.Source's branch into the own forge as federated/<host>/<user>/<branch>
// and reports the update. In order: the names and URLs are checked (nothing runs for a bad
// one); the target's base branch and current federated branch are fetched from the own
// forge with its credentials; the source branch is fetched from the other forge, through
// the guard and under the size cap, with no credentials at all, in a separate git process;
// the update is classified (created, fast-forward, forced, unchanged) and checked for a
// clean merge; only then is the branch pushed, with a lease on its old head. Any failure
// before the push leaves the own forge untouched. The work directory is always removed.
func (s *Syncer) Mirror(ctx context.Context, req Request) (*Result, error) {
	branch, err := s.checkRequest(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	srcHost, dstHost := hostOf(req.Source.CloneURL), hostOf(req.Target.CloneURL)
	log := s.cfg.Log.WithValues("source", srcHost, "target", dstHost, "branch", branch)
	start := time.Now()

	w, err := newWorkdir(s.cfg.TempDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := w.remove(); rerr != nil {
			log.Error(rerr, "gitsync: work directory not removed", "dir", w.root)
		}
	}()
	if _, _, err := w.run(ctx, s.cfg.Git, gitCall{args: []string{"init", "--quiet", "--bare"}}); err != nil {
		return nil, fmt.Errorf("gitsync: %w", err)
	}

	res := &Result{Branch: branch}
	if err := s.fetchTarget(ctx, w, req.Target, branch, res); err != nil {
		return nil, err
	}
	if err := s.fetchSource(ctx, w, req.Source, res); err != nil {
		log.Info("gitsync: fetch refused or failed", "error", err.Error())
		return nil, err
	}
	if err := s.inspect(ctx, w, req, res); err != nil {
		return res, err
	}
	if !res.Unchanged {
		if err := s.push(ctx, w, req.Target, branch, res); err != nil {
			return res, err
		}
	}
	log.V(1).Info("gitsync: mirrored", "old", res.OldHead, "new", res.NewHead, "created", res.Created,
		"forced", res.Forced, "unchanged", res.Unchanged, "commits", len(res.Commits),
		"mergeable", res.Mergeable, "bytes", res.FetchedBytes, "took", time.Since(start).String())
	return res, nil
}

// targetRun runs git against the own forge: through a proxy on the target guard, with the
// forge's credentials scoped to its clone URL.
func (s *Syncer) targetRun(ctx context.Context, w *workdir, t Target, args ...string) (string, error) {
	p, err := startProxy(ctx, s.cfg.Target, 0)
	if err != nil {
		return "", err
	}
	defer p.Close()
	config, secrets := authConfig(t.CloneURL, t.Username, t.Token)
	config = append(config, [2]string{"http.proxy", p.URL()})
	config = append(config, s.caConfig()...)
	out, _, err := w.run(ctx, s.cfg.Git, gitCall{args: args, config: config, secrets: append(secrets, p.password)})
	if err != nil {
		return "", classify(ctx, p, hostOf(t.CloneURL), err)
	}
	return out, nil
}

// caConfig points git at Config.CAFile when there is one.
func (s *Syncer) caConfig() [][2]string {
	if s.cfg.CAFile == "" {
		return nil
	}
	return [][2]string{{"http.sslCAInfo", s.cfg.CAFile}}
}

// fetchTarget reads the base branch and the federated branch from the own forge.
func (s *Syncer) fetchTarget(ctx context.Context, w *workdir, t Target, branch string, res *Result) error {
	host := hostOf(t.CloneURL)
	out, err := s.targetRun(ctx, w, t, "ls-remote", "--refs", "--end-of-options", t.CloneURL,
		"refs/heads/"+t.BaseBranch, "refs/heads/"+branch)
	if err != nil {
		return fmt.Errorf("list refs: %w", err)
	}
	heads := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if hash, ref, ok := strings.Cut(line, "\t"); ok {
			heads[ref] = hash
		}
	}
	res.BaseHead, res.OldHead = heads["refs/heads/"+t.BaseBranch], heads["refs/heads/"+branch]
	if res.BaseHead == "" {
		return fmt.Errorf("gitsync: %s: %w: base branch %s", host, ErrNoBranch, t.BaseBranch)
	}
	specs := []string{"+refs/heads/" + t.BaseBranch + ":" + refBase}
	if res.OldHead != "" {
		specs = append(specs, "+refs/heads/"+branch+":"+refOld)
	}
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--no-write-fetch-head",
		"--end-of-options", t.CloneURL}, specs...)
	if _, err := s.targetRun(ctx, w, t, args...); err != nil {
		return fmt.Errorf("fetch base: %w", err)
	}
	return nil
}

// fetchSource fetches the source branch through a capped proxy on the source guard. The
// process has no credentials of any kind, and only the base and old heads are offered as
// common commits, so the other forge sends the branch's own objects and learns nothing but
// those two public heads.
func (s *Syncer) fetchSource(ctx context.Context, w *workdir, src Source, res *Result) error {
	p, err := startProxy(ctx, s.cfg.Source, s.cfg.MaxFetchBytes)
	if err != nil {
		return err
	}
	defer p.Close()
	args := []string{"fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--no-write-fetch-head",
		"--negotiation-tip=" + refBase}
	if res.OldHead != "" {
		args = append(args, "--negotiation-tip="+refOld)
	}
	args = append(args, "--end-of-options", src.CloneURL, "+refs/heads/"+src.Branch+":"+refNew)
	config := append([][2]string{{"http.proxy", p.URL()}, {"http.followRedirects", "initial"}}, s.caConfig()...)
	_, _, err = w.run(ctx, s.cfg.Git, gitCall{args: args, config: config, secrets: []string{p.password}})
	res.FetchedBytes = p.Received()
	if err != nil {
		return classify(ctx, p, hostOf(src.CloneURL), err)
	}
	return nil
}

// inspect classifies the update, lists its commits and checks the merge.
func (s *Syncer) inspect(ctx context.Context, w *workdir, req Request, res *Result) error {
	git := func(okExit []int, args ...string) (string, int, error) {
		out, code, err := w.run(ctx, s.cfg.Git, gitCall{args: args, okExit: okExit})
		if err != nil {
			return "", code, fmt.Errorf("gitsync: %w", err)
		}
		return out, code, nil
	}
	out, _, err := git(nil, "rev-parse", "--verify", "--end-of-options", refNew+"^{commit}")
	if err != nil {
		return err
	}
	res.NewHead = strings.TrimSpace(out)
	notIn := []string{refBase}
	switch {
	case res.OldHead == "":
		res.Created = true
	case res.OldHead == res.NewHead:
		res.Unchanged = true
	default:
		_, code, err := git([]int{1}, "merge-base", "--is-ancestor", refOld, refNew)
		if err != nil {
			return err
		}
		if code == 1 {
			res.Forced = true
			if req.ExpectedHead != res.OldHead {
				return fmt.Errorf("gitsync: %s: %w: %s is at %s, not at the last mirrored %q, and %s is not a fast-forward",
					hostOf(req.Target.CloneURL), ErrDiverged, res.Branch, res.OldHead, req.ExpectedHead, res.NewHead)
			}
			notIn = append(notIn, refOld)
		} else {
			notIn = []string{refOld}
		}
	}
	if !res.Unchanged {
		if err := s.listCommits(ctx, w, notIn, res); err != nil {
			return err
		}
	}
	out, code, err := git([]int{1}, "merge-base", refBase, refNew)
	if err != nil {
		return err
	}
	if code == 0 {
		res.MergeBase = strings.TrimSpace(out)
		// Exit 0: clean, 1: conflicts; stdout is the tree, then the conflicting paths.
		out, code, err = git([]int{1}, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", refBase, refNew)
		if err != nil {
			return err
		}
		res.Mergeable = code == 0
		fields := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
		for _, f := range fields[1:] {
			if f != "" {
				res.Conflicts = append(res.Conflicts, f)
			}
		}
	}
	if req.RequireMergeable && !res.Mergeable {
		why := "no common history with " + req.Target.BaseBranch
		if res.MergeBase != "" {
			why = "conflicts in " + strings.Join(res.Conflicts, ", ")
		}
		return fmt.Errorf("gitsync: %s: %w into %s: %s", hostOf(req.Target.CloneURL), ErrConflict, req.Target.BaseBranch, why)
	}
	return nil
}

// listCommits fills res.Commits with NewHead's commits not in the refs notIn. Each commit
// is four lines: git writes no newline inside a hash, a time, an ident or a subject (%s
// joins the first paragraph's lines).
func (s *Syncer) listCommits(ctx context.Context, w *workdir, notIn []string, res *Result) error {
	args := []string{"log", "--no-show-signature", "--format=%H%n%at%n%an <%ae>%n%s",
		"--max-count=" + strconv.Itoa(s.cfg.MaxCommits+1), refNew, "--not"}
	args = append(args, notIn...)
	out, _, err := w.run(ctx, s.cfg.Git, gitCall{args: append(args, "--")})
	if err != nil {
		return fmt.Errorf("gitsync: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i := 0; i+3 < len(lines); i += 4 {
		if len(res.Commits) == s.cfg.MaxCommits {
			res.CommitsTruncated = true
			break
		}
		secs, _ := strconv.ParseInt(lines[i+1], 10, 64)
		name, email, _ := strings.Cut(lines[i+2], " <")
		res.Commits = append(res.Commits, Commit{
			Hash:        lines[i],
			AuthorTime:  time.Unix(secs, 0).UTC(),
			AuthorName:  printable(name),
			AuthorEmail: printable(strings.TrimSuffix(email, ">")),
			Summary:     printable(lines[i+3]),
		})
	}
	return nil
}

// printable makes text from a commit safe to show: valid UTF-8, no control or format
// characters (a subject is remote input).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// push writes NewHead to the federated branch with a lease on the head read before: if
// the branch moved on the own forge in between, the push is refused instead of losing it.
func (s *Syncer) push(ctx context.Context, w *workdir, t Target, branch string, res *Result) error {
	dst := "refs/heads/" + branch
	_, err := s.targetRun(ctx, w, t, "push", "--quiet", "--porcelain", "--no-verify", "--no-recurse-submodules",
		"--force-with-lease="+dst+":"+res.OldHead, "--end-of-options", t.CloneURL, res.NewHead+":"+dst)
	if err != nil {
		if strings.Contains(err.Error(), "stale info") {
			return fmt.Errorf("push: %w: %s moved during the update: %v", ErrDiverged, branch, err)
		}
		return fmt.Errorf("push: %w", err)
	}
	return nil
}
