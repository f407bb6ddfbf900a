package forge

import (
	"sort"
	"strings"
)

// Helpers every source uses to build an Event the same way, so that two forges (or a
// webhook and a feed) describing one thing agree on its Identity.

// ZeroSHA reports a git object id of all zeros, which forges send as the "after" of a
// deleted ref and the "before" of a created one.
func ZeroSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// ShortRef strips refs/heads/ or refs/tags/ from a ref.
func ShortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if strings.HasPrefix(ref, p) {
			return ref[len(p):]
		}
	}
	return ref
}

// LastSegment returns the part of a slash-separated path after the last slash.
func LastSegment(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Identity joins the parts of an event identity with a separator no part contains
// after escaping, so that ("a|b", "c") and ("a", "b|c") differ.
func Identity(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = strings.NewReplacer(`\`, `\\`, `|`, `\|`).Replace(p)
	}
	return strings.Join(esc, "|")
}

// SortCommits orders a push's commits oldest first by time, whatever order the forge
// listed them in (forges differ, and none documents it). When a commit has no time the
// forge's order is kept, because a partial order cannot be sorted reliably.
func SortCommits(cs []Commit) {
	for _, c := range cs {
		if c.Time.IsZero() {
			return
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Time.Before(cs[j].Time) })
}

// RepositoryIdentity is the identity of a repository's creation: its path and its
// creation time, so that a repository deleted and created again under the same name is
// news again. A source that selects by topic announces a repository under this identity
// whether it learns of it from the creation itself or from a later event that first
// shows the topic, so that a repository is announced once per actor.
func RepositoryIdentity(r Repository) string {
	return Identity("repository", r.FullName, r.Created)
}
