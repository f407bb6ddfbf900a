package activitypub

import (
	"net/url"
	"strings"
)

// The provenance rules of docs/decisions.md ("Key and actor provenance") live in three
// places of this package and nowhere else: FetchObject (a document is accepted only from
// its own id), KeyCache.fetch (a key is accepted for an actor only when the key and the
// actor point at each other, each fetched from its own id) and KeyCache.PutActorKeys (an
// actor's own document may bring keys only under that document). The helpers below are
// the comparisons they share.

// sameIRI reports whether two absolute http(s) IRIs name the same resource: scheme and
// host compared case-insensitively (as URLs define them), path, query and fragment
// exactly, an empty path being "/". Nothing else is normalised: an id must be spelled as
// the URL it was served from.
func sameIRI(a, b string) bool {
	if a == b {
		return a != ""
	}
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Host == "" || ua.Opaque != "" || ub.Opaque != "" {
		return false
	}
	pa, pb := ua.EscapedPath(), ub.EscapedPath()
	if pa == "" {
		pa = "/"
	}
	if pb == "" {
		pb = "/"
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && pa == pb &&
		ua.RawQuery == ub.RawQuery && ua.ForceQuery == ub.ForceQuery && ua.Fragment == ub.Fragment && ua.User == nil && ub.User == nil
}

// KeyUnderActor reports whether keyID lives under the document of actorID, so that the
// actor's own document (an Update it signed) may state it: the keyId without its
// fragment is the actor's id (Mastodon, Misskey, Pleroma, Lemmy: <actor>#main-key), or
// the key is one path segment below the actor's id (GoToSocial: <actor>/main-key;
// BookWyrm: <actor>/#main-key). No other key, and no key of another host, can be
// brought by an actor's document.
func KeyUnderActor(keyID, actorID string) bool {
	if actorID == "" || strings.ContainsRune(actorID, '#') || hostOf(actorID) == "" {
		return false
	}
	doc, _, _ := strings.Cut(keyID, "#")
	if doc == actorID {
		return true
	}
	rest, ok := strings.CutPrefix(doc, actorID+"/")
	if !ok || strings.ContainsAny(rest, "/?%\\") || rest == "." || rest == ".." {
		return false
	}
	return !strings.ContainsRune(actorID, '?')
}
