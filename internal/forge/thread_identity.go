package forge

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// ThreadIdentity is the Identity of an issue or merge request event (kind "issue" or
// "mr"). Opening and merging happen once per thread, so their identity is the thread and
// the action, as it always was (ids already published must not change). Closing and
// reopening can happen many times: the forge's time of the change is part of the
// identity, so that a retried delivery maps to the same activity while the second close
// of an issue is a new one. A forge that gives no time falls back to the action alone
// (a later close of the same thread is then not posted again: quiet, never a duplicate).
func ThreadIdentity(kind, repo string, number int64, action string, at time.Time) string {
	parts := []string{kind, repo, strconv.FormatInt(number, 10), action}
	if (action == ActionClosed || action == ActionReopened) && !at.IsZero() {
		parts = append(parts, at.UTC().Format(time.RFC3339))
	}
	return Identity(parts...)
}

// CommentIdentity is the Identity of a comment event. A comment is created and deleted
// once; each edit is its own Update, told apart by the forge's edit time and a digest of
// the new text (forges date to the second, and two edits within one second differ in
// their text; a retried delivery of the same edit carries both unchanged).
func CommentIdentity(repo string, onMergeRequest bool, number, commentID int64, action string, edited time.Time, body string) string {
	thread := "issue"
	if onMergeRequest {
		thread = "mr"
	}
	parts := []string{"comment", repo, thread, strconv.FormatInt(number, 10), strconv.FormatInt(commentID, 10), action}
	if action == ActionEdited {
		sum := sha256.Sum256([]byte(body))
		parts = append(parts, edited.UTC().Format(time.RFC3339Nano), hex.EncodeToString(sum[:8]))
	}
	return Identity(parts...)
}

// ForkIdentity is the Identity of a fork of upstream into fork (full paths): a repository
// is forked into one place once.
func ForkIdentity(upstream, fork string) string { return Identity("fork", upstream, fork) }

// StarIdentity is the Identity of a star given (ActionCreated) or taken back
// (ActionDeleted) by user on repo.
func StarIdentity(repo, user, action string) string { return Identity("star", repo, user, action) }

// ownWriteMarker is gitea.KeyMarker, the hidden line Fedforge writes into every body it
// writes into a forge (kept in step by a test in internal/forge/gitea; this package
// cannot import that one).
const ownWriteMarker = "<!-- fedforge:idempotency-key="

// WrittenByFedforge reports whether a comment, issue or merge request body is one that
// Fedforge wrote into the forge itself (a reply or a ticket that came from the
// Fediverse). Readers return ErrIgnoredEvent for such events, so that what came in is
// never echoed back out as if a forge user had written it.
func WrittenByFedforge(body string) bool { return strings.Contains(body, ownWriteMarker) }
