package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadRef is wrapped by every refusal of a branch, host or user name that came from
// another instance: such names end up in git's argv and in a ref on the own forge, so they
// are checked before git runs.
var ErrBadRef = errors.New("bad ref name")

// FederatedPrefix starts every branch Fedforge mirrors into the own forge, so that mirrored
// branches never collide with the forge's own and a reader sees where they came from.
const FederatedPrefix = "federated/"

// MaxBranchLen bounds a remote branch name in bytes. Gitea stores branch names up to 255
// characters; the federated prefix, host and user take the rest of that.
const MaxBranchLen = 150

// maxSegmentLen bounds the host and user segments of a federated branch name.
const maxSegmentLen = 64

// FederatedBranch names the branch on the own forge that mirrors branch of user on host:
// federated/<host>/<user>/<branch>. host is the other instance's host as ActivityPub ids
// carry it (lower-cased; a port is written after an underscore, since ':' is not allowed in
// refs and '_' is not allowed in host names, so the mapping is one to one).
func FederatedBranch(host, user, branch string) (string, error) {
	host = strings.ReplaceAll(strings.ToLower(host), ":", "_")
	if err := validSegment("host", host); err != nil {
		return "", err
	}
	if err := validSegment("user", user); err != nil {
		return "", err
	}
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	return FederatedPrefix + host + "/" + user + "/" + branch, nil
}

// validSegment accepts one path component of [A-Za-z0-9._-], not starting with '.' or '-',
// not ending with ".lock": a host or a forge user name, never a path.
func validSegment(what, s string) error {
	if s == "" || len(s) > maxSegmentLen {
		return fmt.Errorf("%w: %s %q is empty or longer than %d bytes", ErrBadRef, what, s, maxSegmentLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %s %q has a character outside [A-Za-z0-9._-]", ErrBadRef, what, s)
		}
	}
	if s[0] == '.' || s[0] == '-' || strings.HasSuffix(s, ".lock") || strings.Contains(s, "..") {
		return fmt.Errorf("%w: %s %q starts with '.' or '-', contains '..' or ends with .lock", ErrBadRef, what, s)
	}
	return nil
}

// ValidateBranch checks a branch name received from another instance (without
// "refs/heads/"): git's check-ref-format rules for a branch, plus what makes a name unsafe
// to hand to a command line or to show to a person: valid UTF-8 without control or format
// characters (bidi overrides), no leading '-' (an option), not "HEAD", at most MaxBranchLen
// bytes. It never runs git, so a hostile name is refused before any process starts.
func ValidateBranch(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: branch %q %s", ErrBadRef, name, why) }
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > MaxBranchLen:
		return bad(fmt.Sprintf("is longer than %d bytes", MaxBranchLen))
	case !utf8.ValidString(name):
		return bad("is not UTF-8")
	case name[0] == '-':
		return bad("starts with '-'")
	case name == "HEAD" || name == "@":
		return bad("is reserved")
	case strings.HasPrefix(name, "refs/"):
		return bad("starts with refs/ (give the branch name only)")
	case strings.Contains(name, ".."):
		return bad("contains '..'")
	case strings.Contains(name, "@{"):
		return bad("contains '@{'")
	case strings.Contains(name, "//"):
		return bad("contains '//'")
	case name[0] == '/' || strings.HasSuffix(name, "/") || strings.HasSuffix(name, "."):
		return bad("starts with '/' or ends with '/' or '.'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return bad("contains a control or format character")
		}
		if r == ' ' || strings.ContainsRune("~^:?*[\\", r) {
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	for comp := range strings.SplitSeq(name, "/") {
		if comp[0] == '.' || strings.HasSuffix(comp, ".lock") {
			return bad("has a component starting with '.' or ending with .lock")
		}
	}
	return nil
}
