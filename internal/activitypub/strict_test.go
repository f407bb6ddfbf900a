package activitypub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCheckStrict(t *testing.T) {
	tests := map[string]struct {
		doc string
		ok  bool
	}{
		"ordinary activity":            {doc: `{"@context":"https://www.w3.org/ns/activitystreams","id":"https://a.example/1","type":"Follow","actor":"https://a.example/u","object":"https://b.example/v"}`, ok: true},
		"non-ASCII content":            {doc: `{"type":"Note","content":"Grüße, 日本語, 🎉"}`, ok: true},
		"same name in sibling objects": {doc: `{"type":"Create","object":{"type":"Note","id":"x"},"tag":[{"type":"Mention"},{"type":"Hashtag"}]}`, ok: true},
		"Misskey context term Key":     {doc: `{"@context":["https://www.w3.org/ns/activitystreams",{"Key":"sec:Key","Type":"x"}],"type":"Person"}`, ok: true},
		"unknown names in any case":    {doc: `{"type":"Note","Foo":1,"foo":2}`, ok: true},
		"escaped name, no clash":       {doc: `{"\u0074ype":"Note","id":"x"}`, ok: true},
		"empty object and array":       {doc: `{"a":{},"b":[],"c":[[],{}]}`, ok: true},
		"invalid byte 0xff":            {doc: "{\"type\":\"Note\",\"content\":\"\xff\"}"},
		"overlong slash":               {doc: "{\"type\":\"Note\",\"content\":\"\xc0\xaf\"}"},
		"UTF-8 surrogate":              {doc: "{\"type\":\"Note\",\"content\":\"\xed\xa0\x80\"}"},
		"truncated sequence":           {doc: "{\"type\":\"Note\",\"content\":\"\xe6\x97\"}"},
		"invalid byte in a name":       {doc: "{\"typ\xfe\":\"Note\"}"},
		"duplicate actor":              {doc: `{"type":"Follow","actor":"https://a.example/u","actor":"https://b.example/v"}`},
		"case-variant actor":           {doc: `{"type":"Follow","actor":"https://a.example/u","Actor":"https://b.example/v"}`},
		"case-variant type alone":      {doc: `{"TYPE":"Like","id":"x"}`},
		"type and TYPE":                {doc: `{"type":"Follow","TYPE":"Like"}`},
		"duplicate in embedded object": {doc: `{"type":"Update","object":{"id":"x","publicKey":{"id":"k","owner":"a","owner":"b"}}}`},
		"case variant deep inside":     {doc: `{"type":"Undo","object":{"type":"Follow","Object":"x"}}`},
		"duplicate unknown name":       {doc: `{"type":"Note","foo":1,"foo":2}`},
		"duplicate through an escape":  {doc: `{"type":"Note","\u0074ype":"Like"}`},
		"long s folds to s":            {doc: `{"type":"Note","ſummary":"x"}`},
		"Kelvin sign folds to k":       {doc: `{"type":"Note","li` + "\u212a" + `es":"x"}`},
		"duplicate in @context":        {doc: `{"@context":{"a":"x","a":"y"},"type":"Note"}`},
		"duplicate among many members": {doc: `{` + manyMembers(200) + `,"m7":0}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckStrict([]byte(tc.doc))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !isKind(err, KindMalformed) || StatusOf(err) != 400 {
				t.Fatalf("got %v, want malformed/400", err)
			}
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + `":` + "0")
	}
	return `"m7":1,` + b.String()
}

// strictReference finds duplicate names and case variants of read names with
// encoding/json's tokenizer, slowly and obviously, for the fuzzer to compare with.
func strictReference(b []byte) (dup bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj     bool
		names   map[string]bool
		wantKey bool
		inCtx   bool
	}
	var stack []*frame
	ctxNext := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		inCtx := top != nil && top.inCtx
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				f := &frame{obj: v == '{', names: map[string]bool{}, wantKey: v == '{', inCtx: inCtx || ctxNext}
				ctxNext = false
				if top != nil && top.obj {
					top.wantKey = true
				}
				stack = append(stack, f)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.obj && top.wantKey {
				if top.names[v] {
					return true
				}
				top.names[v] = true
				if canon, ok := readNames[strings.ToLower(v)]; ok && canon != v && !inCtx {
					return true
				}
				ctxNext = v == "@context"
				top.wantKey = false
				continue
			}
		}
		ctxNext = false
		if top != nil && top.obj {
			top.wantKey = true
		}
	}
}

// FuzzCheckStrict: CheckStrict never panics, refuses every document that is not UTF-8,
// and on valid JSON agrees with a slow tokenizer-based reference (ASCII names; the
// Unicode folds are in the table above).
func FuzzCheckStrict(f *testing.F) {
	for _, s := range []string{
		`{"type":"Follow","actor":"a","object":{"type":"Note","Object":1}}`,
		`{"@context":[{"Key":"sec:Key"}],"a":[1,{"b":2,"b":3}]}`,
		`{"a":"\u0061","\u0061":1}`, `[{"x":1},{"x":1}]`, `{"a":`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckStrict(b)
		if !json.Valid(b) {
			return
		}
		ascii := true
		for _, c := range b {
			if c >= 0x80 || c == '\\' {
				ascii = false
			}
		}
		if !ascii {
			return
		}
		if want := strictReference(b); want != (err != nil) {
			t.Fatalf("CheckStrict %v, reference finds a clash: %v, for %q", err, want, b)
		}
	})
}

func BenchmarkCheckStrict(b *testing.B) {
	for name, doc := range map[string][]byte{
		"create-note-380B":     []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://peer.fedforge.test/users/bob/statuses/1/activity","type":"Create","actor":"https://peer.fedforge.test/users/bob","published":"2025-06-01T12:00:00Z","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://peer.fedforge.test/users/bob/followers"],"object":{"id":"https://peer.fedforge.test/users/bob/statuses/1","type":"Note","content":"<p>hello</p>","attributedTo":"https://peer.fedforge.test/users/bob"}}`),
		"mastodon-actor-5KB":   mustRead(b, "fediverse/mastodon-actor-person.json"),
		"mastodon-follow":      mustRead(b, "fediverse/mastodon-follow.json"),
		"mastodon-followers-p": mustRead(b, "fediverse/mastodon-followers-page.json"),
	} {
		b.Run(name+"/strict", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := CheckStrict(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := DecodeObject(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
