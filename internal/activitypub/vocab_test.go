package activitypub

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// golden compares v, rendered as indented JSON, with testdata/golden/name.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden (run go test -update to accept):\n%s", name, got)
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestDecodeRealPayloads reads documents real peers sent or serve, as they are.
func TestDecodeRealPayloads(t *testing.T) {
	tests := map[string]struct {
		file  string
		check func(t *testing.T, o *Object)
	}{
		"mastodon actor": {"fediverse/mastodon-actor-person.json", func(t *testing.T, o *Object) {
			if !o.Type.Has("Person") || o.SharedInbox() == "" || len(o.PublicKey) != 1 || o.PublicKey[0].Owner != o.ID {
				t.Fatalf("actor fields: %+v", o)
			}
			if _, ok, err := o.KeyByID(o.PublicKey[0].ID); !ok || err != nil {
				t.Fatalf("key: %v %v", ok, err)
			}
		}},
		"mastodon follow": {"fediverse/mastodon-follow.json", func(t *testing.T, o *Object) {
			if !o.Type.Has(TypeFollow) || o.Actor.ID() == "" || o.Object.ID() == "" {
				t.Fatalf("follow: %+v", o)
			}
		}},
		"mastodon accept": {"fediverse/mastodon-accept.json", func(t *testing.T, o *Object) {
			if !o.Type.Has(TypeAccept) || o.Object.ID() == "" {
				t.Fatalf("accept: %+v", o)
			}
		}},
		"mastodon followers": {"fediverse/mastodon-followers.json", func(t *testing.T, o *Object) {
			if !o.Type.Has(TypeOrderedCollection) || o.TotalItems == nil {
				t.Fatalf("collection: %+v", o)
			}
		}},
		"mastodon followers page": {"fediverse/mastodon-followers-page.json", func(t *testing.T, o *Object) {
			if !o.Type.Has(TypeOrderedCollectionPage) || o.PartOf.ID() == "" {
				t.Fatalf("page: %+v", o)
			}
		}},
		"gotosocial create note": {"peers/gotosocial-create-note.json", func(t *testing.T, o *Object) {
			n := o.Object.Object
			if n == nil || !n.Type.Has(TypeNote) || !o.IsPublic() || n.Sensitive == nil || !*n.Sensitive || n.ContentMap["en"] == "" {
				t.Fatalf("create: %+v", o)
			}
			if _, ok := n.Extra["interactionPolicy"]; !ok {
				t.Fatal("unknown interactionPolicy lost")
			}
		}},
		"gotosocial update person (/main-key)": {"peers/gotosocial-update-person.json", func(t *testing.T, o *Object) {
			p := o.Object.Object
			if p == nil || p.PublicKey[0].ID != p.ID+"/main-key" || p.Indexable == nil || !*p.Indexable {
				t.Fatalf("person: %+v", p)
			}
			if o.Bcc.IDs()[0] != p.Followers {
				t.Fatal("bcc")
			}
		}},
		"gotosocial note with single Mention tag": {"peers/gotosocial-note-mention.json", func(t *testing.T, o *Object) {
			if len(o.Tag) != 1 || !o.Tag[0].Object.Type.Has(TypeMention) || len(o.Cc) != 2 || o.InReplyTo.ID() == "" {
				t.Fatalf("note: %+v", o)
			}
		}},
		"gotosocial outbox page": {"peers/gotosocial-outbox-page.json", func(t *testing.T, o *Object) {
			if len(o.OrderedItems) != 2 || o.OrderedItems[0].Object.Object.ID() == "" {
				t.Fatalf("page: %+v", o)
			}
		}},
		"misskey actor": {"peers/misskey-actor-person.json", func(t *testing.T, o *Object) {
			if o.SharedInbox() != "https://misskey.io/inbox" || len(o.Tag) != 3 || !o.Tag[1].Object.Type.Has(TypeHashtag) {
				t.Fatalf("actor: %+v", o)
			}
			if _, ok := o.Extra["isCat"]; !ok {
				t.Fatal("isCat lost")
			}
			if err := CheckMastodonActor(mustRead(t, "peers/misskey-actor-person.json"), "https://misskey.io/users/7rkrarq81i"); err != nil {
				t.Fatal(err)
			}
		}},
		"misskey note (inReplyTo null)": {"peers/misskey-note.json", func(t *testing.T, o *Object) {
			if !o.IsPublic() || !o.InReplyTo.IsZero() || o.Published.IsZero() {
				t.Fatalf("note: %+v", o)
			}
		}},
		"streams actor (Multikey object, alsoKnownAs string)": {"peers/streams-actor-multikey.json", func(t *testing.T, o *Object) {
			if len(o.AssertionMethod) != 1 || len(o.AlsoKnownAs) != 1 {
				t.Fatalf("actor: %+v", o)
			}
			k, ok, err := o.KeyByID("https://macgirvin.com/channel/mike?operation=ed25519key")
			if !ok || err != nil || len(k.(ed25519.PublicKey)) != 32 {
				t.Fatalf("multikey: %v %v", ok, err)
			}
		}},
		"forgejo like": {"peers/forgejo-like.json", func(t *testing.T, o *Object) {
			if !o.Type.Has(TypeLike) || o.StartTime.IsZero() || o.Object.ID() == "" {
				t.Fatalf("like: %+v", o)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			raw := mustRead(t, tc.file)
			o, err := DecodeObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
			// Unknown properties survive a decode and encode.
			again, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			var before, after map[string]json.RawMessage
			_ = json.Unmarshal(raw, &before)
			_ = json.Unmarshal(again, &after)
			for k := range before {
				if knownProps[strings.ToLower(k)] {
					continue
				}
				if _, ok := after[k]; !ok {
					t.Errorf("property %q lost", k)
				}
			}
		})
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTolerantShapes(t *testing.T) {
	tests := map[string]struct {
		doc   string
		check func(o *Object) bool
	}{
		"type string":           {`{"type":"Note"}`, func(o *Object) bool { return o.Type.Has("Note") }},
		"type array":            {`{"type":["Repository","Service"]}`, func(o *Object) bool { return o.Type.Has("Service") && o.Type.Has("Repository") }},
		"type compact IRI":      {`{"type":"as:Note"}`, func(o *Object) bool { return o.Type.Has("Note") }},
		"to string":             {`{"to":"https://a.example/u"}`, func(o *Object) bool { return len(o.To) == 1 }},
		"to array with null":    {`{"to":["https://a.example/u",null]}`, func(o *Object) bool { return len(o.To) == 1 }},
		"to object":             {`{"to":{"id":"https://a.example/u","type":"Person"}}`, func(o *Object) bool { return o.To.Contains("https://a.example/u") }},
		"public full":           {`{"to":"https://www.w3.org/ns/activitystreams#Public"}`, func(o *Object) bool { return o.IsPublic() }},
		"public as:Public":      {`{"cc":["as:Public"]}`, func(o *Object) bool { return o.IsPublic() && o.Cc[0].IRI == PublicIRI }},
		"public bare":           {`{"to":["Public"]}`, func(o *Object) bool { return o.IsPublic() }},
		"actor object":          {`{"actor":{"id":"https://a.example/u","type":"Person"}}`, func(o *Object) bool { return o.Actor.ID() == "https://a.example/u" }},
		"actor array":           {`{"actor":["https://a.example/u","https://b.example/v"]}`, func(o *Object) bool { return o.Actor.ID() == "https://a.example/u" }},
		"context string":        {`{"@context":"https://www.w3.org/ns/activitystreams","type":"Note"}`, func(o *Object) bool { return len(o.Context) > 0 }},
		"context with objects":  {`{"@context":["https://www.w3.org/ns/activitystreams",{"toot":"http://joinmastodon.org/ns#"}]}`, func(o *Object) bool { return bytes.Contains(o.Context, []byte("toot")) }},
		"publicKey array":       {`{"id":"https://a.example/u","publicKey":[{"id":"https://a.example/u#k","owner":"https://a.example/u"}]}`, func(o *Object) bool { return len(o.PublicKey) == 1 }},
		"publicKey IRI":         {`{"publicKey":"https://a.example/u#k"}`, func(o *Object) bool { return o.PublicKey[0].ID == "https://a.example/u#k" }},
		"endpoints IRI":         {`{"endpoints":"https://a.example/e"}`, func(o *Object) bool { return o.Endpoints != nil && o.Endpoints.SharedInbox == "" }},
		"bad date is absent":    {`{"published":"yesterday"}`, func(o *Object) bool { return o.Published.IsZero() }},
		"url link object":       {`{"url":{"type":"Link","href":"https://a.example/p"}}`, func(o *Object) bool { return o.URL.IDs()[0] == "https://a.example/p" }},
		"description string":    {`{"description":"text"}`, func(o *Object) bool { return o.Description.Content == "text" }},
		"manuallyApproves null": {`{"manuallyApprovesFollowers":null}`, func(o *Object) bool { return o.ManuallyApprovesFollowers == nil }},
		"unknown nested kept":   {`{"x:y":{"a":[1,2]}}`, func(o *Object) bool { return string(o.Extra["x:y"]) == `{"a":[1,2]}` }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := DecodeObject([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("unexpected decode: %+v", o)
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	tests := map[string]struct {
		doc  []byte
		kind Kind
	}{
		"not json":        {[]byte(`{`), KindMalformed},
		"array":           {[]byte(`[]`), KindMalformed},
		"empty":           {nil, KindMalformed},
		"wrong type name": {[]byte(`{"name":5}`), KindMalformed},
		"too deep":        {bytes.Repeat([]byte(`{"object":`), 200), KindMalformed},
		"oversized":       {append([]byte(`{"content":"`), bytes.Repeat([]byte("a"), MaxDocumentBytes)...), KindTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeObject(tc.doc)
			if !isKind(err, tc.kind) {
				t.Fatalf("got %v, want %s", err, tc.kind)
			}
		})
	}
}

// TestMastodonFollowsRepository proves that a Repository actor typed
// ["Repository","Service"] passes Mastodon's actor check and a bare one does not.
func TestMastodonActorCheck(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	rsaPEM := string(mustRead(t, "httpsig/test-key-rsa.pub.pem"))
	base := ActorSpec{ID: "https://forge.example/actors/repo", PreferredUsername: "repo", Inbox: "https://forge.example/actors/repo/inbox", RSAPublicKeyPEM: rsaPEM, Ed25519PublicKey: pub}
	tests := map[string]struct {
		types []string
		edit  func(o *Object)
		ok    bool
	}{
		"Repository+Service":              {types: FollowableTypes(TypeRepository), ok: true},
		"Team+Group":                      {types: FollowableTypes(TypeTeam), ok: true},
		"Person":                          {types: []string{TypePerson}, ok: true},
		"bare Repository":                 {types: []string{TypeRepository}},
		"no publicKey (GitLab's mistake)": {types: []string{TypeApplication}, edit: func(o *Object) { o.PublicKey = nil }},
		"wrong key owner":                 {types: []string{TypeService}, edit: func(o *Object) { o.PublicKey[0].Owner = "https://evil.example/x" }},
		"no inbox":                        {types: []string{TypeService}, edit: func(o *Object) { o.Inbox = "" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := base
			s.Types = tc.types
			o := NewActor(s)
			if tc.edit != nil {
				tc.edit(o)
			}
			doc, _ := json.Marshal(o)
			err := CheckMastodonActor(doc, "https://forge.example/actors/repo")
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestGoldenDocuments pins every document shape we emit.
func TestGoldenDocuments(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	rsaPEM := string(mustRead(t, "httpsig/test-key-rsa.pub.pem"))
	published := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	actorID := "https://forge.example/actors/releases-group-project"
	repoID := "https://forge.example/actors/group-project"
	to, cc := Address(Public, actorID+"/followers")
	note := &Object{ID: actorID + "/notes/v1.2.0", Type: Types{TypeNote}, AttributedTo: IRIRefs(actorID),
		Content: `<p>group/project v1.2.0 released</p>`, Published: Time{published}, To: to, Cc: cc,
		URL: IRIRefs("https://git.example/group/project/-/releases/v1.2.0"),
		Tag: Refs{ObjectRef(&Object{Type: Types{TypeHashtag}, Name: "#release", Href: "https://forge.example/tags/release"})}}
	push := &Object{ID: repoID + "/pushes/abc", Type: Types{TypePush}, AttributedTo: IRIRefs("https://forge.example/actors/alice"),
		ASContext: IRIRef(repoID), Target: IRIRef(repoID + "/branches/main"), ForgeFed: ForgeFed{HashBefore: "1111111", HashAfter: "2222222"},
		Object: ObjectRef(&Object{Type: Types{TypeOrderedCollection}, TotalItems: new(int), OrderedItems: Refs{}})}
	*push.Object.Object.TotalItems = 1
	push.Object.Object.OrderedItems = Refs{ObjectRef(&Object{ID: repoID + "/commits/2222222", Type: Types{TypeCommit},
		Summary: "Fix the thing", ASContext: IRIRef(repoID), ForgeFed: ForgeFed{Hash: "2222222",
			Description: &Content{MediaType: "text/plain", Content: "Fix the thing\n\nLonger text."}, Committed: Time{published}}})}
	ticket := &Object{Type: Types{TypeTicket}, ASContext: IRIRef(repoID + "/issues"), AttributedTo: IRIRefs("https://other.example/users/bob"),
		Name: "Crash on start", Content: "<p>It crashes.</p>", Source: &Content{MediaType: "text/markdown; variant=Commonmark", Content: "It crashes."}}
	follow := NewActivity(TypeFollow, "https://other.example/follows/1", "https://other.example/users/bob", IRIRef(actorID), IRIRefs(actorID), nil)
	docs := map[string]*Object{
		"actor-person.json": NewActor(ActorSpec{ID: "https://forge.example/actors/alice", Types: FollowableTypes(TypePerson),
			PreferredUsername: "alice", Name: "Alice", Summary: "Maintainer", URL: "https://git.example/alice",
			Inbox: "https://forge.example/actors/alice/inbox", Outbox: "https://forge.example/actors/alice/outbox",
			Followers: "https://forge.example/actors/alice/followers", Following: "https://forge.example/actors/alice/following",
			SharedInbox: "https://forge.example/inbox", RSAPublicKeyPEM: rsaPEM, Ed25519PublicKey: pub, Discoverable: true, Published: published}),
		"actor-repository.json": NewActor(ActorSpec{ID: repoID, Types: FollowableTypes(TypeRepository), PreferredUsername: "group-project",
			Name: "group/project", Inbox: repoID + "/inbox", Outbox: repoID + "/outbox", Followers: repoID + "/followers",
			SharedInbox: "https://forge.example/inbox", RSAPublicKeyPEM: rsaPEM, Ed25519PublicKey: pub,
			CloneURI: []string{"https://git.example/group/project.git"}, TicketsTrackedBy: repoID + "/issues",
			SendPatchesTo: repoID + "/merge_requests", Published: published, IconURL: "https://git.example/avatar.png", IconMediaType: "image/png"}),
		"create-note-release.json": NewActivity(TypeCreate, note.ID+"/activity", actorID, Embed(note), to, cc),
		"push.json":                NewActivity(TypePush, push.ID+"/activity", "https://forge.example/actors/alice", Embed(push), IRIRefs(repoID+"/followers"), nil),
		"follow.json":              follow,
		"accept-follow.json":       NewActivity(TypeAccept, actorID+"/accepts/1", actorID, Embed(follow), IRIRefs("https://other.example/users/bob"), nil),
		"undo-follow.json":         NewActivity(TypeUndo, "https://forge.example/actors/alice/undo/1", "https://forge.example/actors/alice", IRIRef("https://forge.example/actors/alice/follows/1"), IRIRefs("https://other.example/users/bob"), nil),
		"update-actor.json":        NewActivity(TypeUpdate, actorID+"#updates/1", actorID, IRIRef(actorID), IRIRefs(PublicIRI), IRIRefs(actorID+"/followers")),
		"delete-actor.json":        NewActivity(TypeDelete, actorID+"#delete", actorID, IRIRef(actorID), IRIRefs(PublicIRI), IRIRefs(actorID+"/followers")),
		"offer-ticket.json":        NewActivity(TypeOffer, "https://other.example/offers/1", "https://other.example/users/bob", Embed(ticket), IRIRefs(repoID+"/issues"), nil),
		"resolve-ticket.json":      NewActivity(TypeResolve, repoID+"/resolves/1", repoID, IRIRef(repoID+"/issues/7"), IRIRefs(repoID+"/followers"), nil),
		"outbox-collection.json": {Context: ActivityContext(), ID: actorID + "/outbox", Type: Types{TypeOrderedCollection},
			TotalItems: new(int), First: IRIRef(actorID + "/outbox?page=true")},
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			got := indentJSON(t, doc)
			golden(t, name, got)
			// What we write, we read back identically.
			back, err := DecodeObject(got)
			if err != nil {
				t.Fatal(err)
			}
			if again := indentJSON(t, back); !bytes.Equal(again, got) {
				t.Fatalf("round trip differs:\n%s", again)
			}
		})
	}
}
