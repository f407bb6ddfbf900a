// Package giteatest starts a real, throwaway Gitea for a Go test, so that forge code is
// tested against the forge users run rather than against recorded webhook payloads.
//
// Gitea is built from the Go module proxy and started on loopback by the project script
// hack/gitea.sh (see docs/forges.md); this package finds the repository root, runs the
// script, stops the instance when the test ends and offers SDK helpers for the objects
// tests need (users, repositories, webhooks) and a scrubbed `git`.
package giteatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
)

// EnvBinary names the variable hack/test.sh sets to the Gitea binary it built before the
// tests start; when it is set, the binary must exist (a stale path is an error, not a skip).
const EnvBinary = "FEDFORGE_GITEA"

// buildTimeout bounds a cold build of Gitea (about 8 minutes on 2 shared cores).
const buildTimeout = 30 * time.Minute

// Instance is one running Gitea, owned by the test that started it.
type Instance struct {
	// URL is the base URL without a trailing slash, e.g. http://127.0.0.1:40123.
	URL string
	// AdminUser and AdminPassword log in as the site administrator.
	AdminUser, AdminPassword string
	// Token is the administrator's access token with every scope.
	Token string
	// Dir holds the instance's app.ini, SQLite database, repositories and logs.
	Dir string
	// Client is an SDK client authenticated with Token.
	Client *gitea.Client

	root string
}

// instanceJSON is what `hack/gitea.sh start` prints.
type instanceJSON struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Token    string `json:"token"`
	Dir      string `json:"dir"`
	PID      int    `json:"pid"`
}

// Start builds Gitea when it is not built yet (never skipping), starts an instance on a
// free port of 127.0.0.1 in a directory of its own, and stops it when the test ends.
func Start(t testing.TB) *Instance {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("giteatest: %v", err)
	}
	binary, err := Build(t.Context(), root)
	if err != nil {
		t.Fatalf("giteatest: %v", err)
	}
	t.Logf("giteatest: Gitea binary %s", binary)

	var info instanceJSON
	// A free port can be taken between our probe and Gitea's listen: retry with another,
	// in a directory of its own (an instance is set up for one address).
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatalf("giteatest: %v", err)
		}
		info, err = start(t.Context(), root, dir, addr)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("giteatest: %v", err)
		}
		t.Logf("giteatest: start on %s failed, retrying on another port: %v", addr, err)
	}
	inst := &Instance{
		URL:           strings.TrimSuffix(info.URL, "/"),
		AdminUser:     info.User,
		AdminPassword: info.Password,
		Token:         info.Token,
		Dir:           info.Dir,
		root:          root,
	}
	t.Cleanup(func() { inst.stop(t) })
	inst.Client, err = gitea.NewClient(inst.URL, gitea.SetToken(inst.Token))
	if err != nil {
		t.Fatalf("giteatest: SDK client for %s: %v", inst.URL, err)
	}
	t.Logf("giteatest: Gitea at %s (pid %d, dir %s)", inst.URL, info.PID, inst.Dir)
	return inst
}

// RepoRoot finds the Fedforge checkout from the working directory (a package directory
// under `go test`) by looking upwards for hack/gitea.sh.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "gitea.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/gitea.sh not found above the working directory")
		}
		dir = parent
	}
}

// Build returns the Gitea binary: the one hack/test.sh announced in FEDFORGE_GITEA, or
// the one `hack/gitea.sh build` prints after building it (cached under bin/gitea).
func Build(ctx context.Context, root string) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("%s=%s is not a Gitea binary (run hack/gitea.sh build): %v", EnvBinary, p, err)
		}
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	out, err := script(ctx, root, "build")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// start runs `hack/gitea.sh start` and decodes the instance it prints.
func start(ctx context.Context, root, dir, addr string) (instanceJSON, error) {
	var info instanceJSON
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := script(ctx, root, "start", dir, addr)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return info, fmt.Errorf("hack/gitea.sh start printed no instance JSON: %w", err)
	}
	if info.URL == "" || info.Token == "" {
		return info, errors.New("hack/gitea.sh start printed an instance without URL or token")
	}
	return info, nil
}

// stop ends the instance, and shows the end of its log when the test failed.
func (i *Instance) stop(t testing.TB) {
	if t.Failed() {
		if b, err := os.ReadFile(filepath.Join(i.Dir, "log", "gitea.log")); err == nil {
			t.Logf("giteatest: last records of %s/log/gitea.log:\n%s", i.Dir, lastRecords(b, 30))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := script(ctx, i.root, "stop", i.Dir); err != nil {
		t.Errorf("giteatest: %v", err)
	}
}

// script runs hack/gitea.sh with args and returns its standard output; standard error
// (progress, failures) goes into the error.
func script(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "gitea.sh"), args...)
	cmd.Dir = root
	// The script watches this process and stops its Gitea if the test binary dies before
	// its cleanup runs (a timeout or a crash), so that no instance outlives its test.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GITEA_WATCH_PID=%d", os.Getpid()))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/gitea.sh %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// lastRecords returns the last n log records of a Gitea log: the lines that start with a
// date, without the stack frames that follow a panic.
func lastRecords(log []byte, n int) string {
	var records []string
	for line := range strings.SplitSeq(string(log), "\n") {
		if len(line) > 4 && line[0] >= '0' && line[0] <= '9' && line[4] == '/' {
			records = append(records, line)
		}
	}
	return strings.Join(records[max(0, len(records)-n):], "\n")
}
