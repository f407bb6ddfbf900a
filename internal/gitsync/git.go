package gitsync

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// workdir is one operation's throwaway place: a bare repository, an empty HOME and an
// empty hooks directory, all removed when the operation ends.
type workdir struct {
	root, repo, home, hooks string
}

func newWorkdir(parent string) (*workdir, error) {
	root, err := os.MkdirTemp(parent, "gitsync-*")
	if err != nil {
		return nil, fmt.Errorf("gitsync: work directory: %w", err)
	}
	w := &workdir{root: root, repo: filepath.Join(root, "repo.git"), home: filepath.Join(root, "home"), hooks: filepath.Join(root, "hooks")}
	for _, d := range []string{w.repo, w.home, w.hooks} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("gitsync: work directory: %w", err)
		}
	}
	return w, nil
}

func (w *workdir) remove() error { return os.RemoveAll(w.root) }

// gitCall is one run of git: its arguments, the extra configuration it gets through
// GIT_CONFIG_* (never argv: ps shows argv to every user), and secrets to blank out of
// whatever it prints.
type gitCall struct {
	args    []string
	config  [][2]string
	secrets []string
	okExit  []int // exit codes that are answers, not failures (merge-base, merge-tree)
}

// gitError is a failed git run: the command (without configuration) and what it printed,
// secrets blanked.
type gitError struct {
	cmd    string
	code   int
	stderr string
	err    error
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", e.cmd, e.err, e.stderr)
}

func (e *gitError) Unwrap() error { return e.err }

// baseConfig is what every git run gets, on top of an environment with nothing of the
// host's: no hooks (an empty hooks directory), no credential helper, http and https only,
// fsck of every received object, no background maintenance, no fsmonitor, and the proxy
// authenticated with basic auth without a first 407 round trip.
func (w *workdir) baseConfig() [][2]string {
	return [][2]string{
		{"core.hooksPath", w.hooks},
		{"core.fsmonitor", "false"},
		{"credential.helper", ""},
		{"protocol.allow", "never"},
		{"protocol.http.allow", "always"},
		{"protocol.https.allow", "always"},
		{"protocol.version", "2"},
		{"fetch.fsckObjects", "true"},
		{"transfer.fsckObjects", "true"},
		{"fetch.recurseSubmodules", "false"},
		{"gc.auto", "0"},
		{"maintenance.auto", "false"},
		{"http.proxyAuthMethod", "basic"},
		{"init.defaultBranch", "main"},
	}
}

// env is the whole environment of a git run: a fixed PATH, a throwaway HOME, no system
// or global configuration, no prompt of any kind, the C locale (stable messages to match),
// and git kept inside the work repository.
func (w *workdir) env(config [][2]string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + w.home,
		"XDG_CONFIG_HOME=" + filepath.Join(w.home, ".config"),
		"LC_ALL=C",
		"GIT_DIR=" + w.repo,
		"GIT_CEILING_DIRECTORIES=" + w.root,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false",
		"SSH_ASKPASS=/bin/false",
		"GIT_ALLOW_PROTOCOL=http:https",
		"GIT_PROTOCOL_FROM_USER=0",
		"GIT_NO_REPLACE_OBJECTS=1",
		fmt.Sprintf("GIT_CONFIG_COUNT=%d", len(config)),
	}
	for i, kv := range config {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

// run runs git in w with the scrubbed environment; the whole process group is killed when
// ctx ends (fetch and push start git-remote-http children that would keep the pipes open).
func (w *workdir) run(ctx context.Context, gitBin string, c gitCall) (string, int, error) {
	cmd := exec.CommandContext(ctx, gitBin, c.args...)
	cmd.Dir = w.root
	cmd.Env = w.env(append(w.baseConfig(), c.config...))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
		for _, ok := range c.okExit {
			if code == ok {
				err = nil
			}
		}
	}
	if err != nil {
		// push --porcelain says why a ref was rejected on stdout.
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		for _, s := range c.secrets {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "[redacted]")
			}
		}
		return "", code, &gitError{cmd: c.args[0], code: code, stderr: msg, err: err}
	}
	return stdout.String(), code, nil
}

// authConfig is the configuration that authenticates to the own forge: an Authorization
// header scoped to that forge's clone URL (http.<url>.extraHeader), no redirects followed
// (so the header cannot be replayed elsewhere), and the secrets to blank out of errors.
// It is only ever given to runs that talk to the own forge.
func authConfig(cloneURL, username, token string) ([][2]string, []string) {
	if token == "" {
		return [][2]string{{"http.followRedirects", "false"}}, nil
	}
	basic := base64.StdEncoding.EncodeToString([]byte(username + ":" + token))
	return [][2]string{
		{"http.followRedirects", "false"},
		{"http." + cloneURL + ".extraHeader", "Authorization: Basic " + basic},
	}, []string{token, basic}
}
