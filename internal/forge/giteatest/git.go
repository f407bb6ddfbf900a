package giteatest

import (
	"bytes"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs Debian's `git` as user (authenticated over HTTP with token) in dir, with an
// environment that holds nothing of the host's: no system or global config, no credential
// helper, no prompt, a throwaway HOME, fixed author and committer. The token travels in
// an http.extraHeader set through GIT_CONFIG_* variables, so it is neither in argv (ps)
// nor in a remote URL that git would echo in its errors. It returns trimmed stdout.
func Git(t testing.TB, dir, user, token string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("giteatest: git not found (hack/gitea.sh start installs it from Debian): %v", err)
	}
	home := filepath.Join(t.TempDir(), "home")
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=" + user, "GIT_AUTHOR_EMAIL=" + user + "@example.invalid",
		"GIT_COMMITTER_NAME=" + user, "GIT_COMMITTER_EMAIL=" + user + "@example.invalid",
		"GIT_CONFIG_COUNT=3",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token)),
		"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1=",
		"GIT_CONFIG_KEY_2=init.defaultBranch", "GIT_CONFIG_VALUE_2=main",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("giteatest: git %s in %s: %v: %s", args[0], dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String())
}
