package activitypub

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"
)

// CheckStrict refuses, with KindMalformed (400), a body that the inbox must not read
// tolerantly, because a reader other than encoding/json would read it differently:
// bytes that are not UTF-8 (RFC 8259 section 8.1; the received log stores the body as
// it came, and PostgreSQL text refuses them), a member name used twice in one object
// (RFC 7493, I-JSON; encoding/json keeps the last, other readers the first), and a
// member whose name differs only in case from a name the server reads ("Actor" beside
// or instead of "actor": encoding/json folds case, JSON-LD does not). Every object of
// the document is checked, at any depth. It is one pass over the bytes, with no
// allocation for documents of ordinary shape; the caller decodes the document after.
// For input that is not JSON it returns nil and leaves the error to the decoder.
func CheckStrict(b []byte) error {
	if !utf8.Valid(b) {
		return newErr(KindMalformed, "", nil, "document is not valid UTF-8")
	}
	s := strictScanner{b: b}
	i := skipSpace(b, 0)
	if i < len(b) && (b[i] == '{' || b[i] == '[') {
		s.value(i, 0, false)
	}
	if s.err != "" {
		return newErr(KindMalformed, "", nil, "%s", s.err)
	}
	return nil
}

// readNames maps the lower-cased form of every member name that encoding/json matches
// to a field of the documents the server reads (Object, its keys and endpoints) to its
// exact spelling.
var readNames = func() map[string]string {
	m := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				m[strings.ToLower(name)] = name
			}
		}
	}
	for _, v := range []any{Object{}, PublicKey{}, Multikey{}, Endpoints{}} {
		walk(reflect.TypeOf(v))
	}
	return m
}()

// strictScanner walks a JSON document and records the first strictness violation. It
// trusts nothing: on input that is not JSON it stops without a violation.
type strictScanner struct {
	b   []byte
	err string
}

// value scans the value at b[i] and returns the index after it.
func (s *strictScanner) value(i, depth int, inContext bool) int {
	if i >= len(s.b) || depth > MaxDocumentDepth || s.err != "" {
		return len(s.b)
	}
	switch s.b[i] {
	case '{':
		return s.object(i, depth+1, inContext)
	case '[':
		i = skipSpace(s.b, i+1)
		for i < len(s.b) && s.b[i] != ']' && s.err == "" {
			i = skipSpace(s.b, s.value(i, depth+1, inContext))
			if i < len(s.b) && s.b[i] == ',' {
				i = skipSpace(s.b, i+1)
			} else {
				break
			}
		}
		return i + 1
	}
	return endOfValue(s.b, i)
}

// object scans the object at b[i] (a '{'): its member names must be unique and, outside
// @context (whose terms, such as Misskey's "Key", the server does not read), spelled as
// the server reads them.
func (s *strictScanner) object(i, depth int, inContext bool) int {
	var small [24][]byte
	names := small[:0]
	var many map[string]bool
	i = skipSpace(s.b, i+1)
	for i < len(s.b) && s.b[i] == '"' && s.err == "" {
		end := endOfValue(s.b, i)
		if end > len(s.b) || end-i < 2 {
			return len(s.b)
		}
		name := memberName(s.b[i:end])
		if canon, ok := foldedReadName(name); ok && !inContext && canon != string(name) {
			s.err = "member " + quoteName(name) + " differs only in case from " + quoteName([]byte(canon))
			return len(s.b)
		}
		if many != nil {
			if many[string(name)] {
				s.err = "member " + quoteName(name) + " appears twice in one object"
				return len(s.b)
			}
			many[string(name)] = true
		} else {
			for _, n := range names {
				if bytes.Equal(n, name) {
					s.err = "member " + quoteName(name) + " appears twice in one object"
					return len(s.b)
				}
			}
			names = append(names, name)
			if len(names) > 64 { // a map beyond, so that many members cost linear time
				many = make(map[string]bool, 2*len(names))
				for _, n := range names {
					many[string(n)] = true
				}
			}
		}
		i = skipSpace(s.b, end)
		if i >= len(s.b) || s.b[i] != ':' {
			return len(s.b)
		}
		i = skipSpace(s.b, s.value(skipSpace(s.b, i+1), depth, inContext || string(name) == "@context"))
		if i < len(s.b) && s.b[i] == ',' {
			i = skipSpace(s.b, i+1)
		}
	}
	return i + 1
}

// memberName decodes a JSON string token as encoding/json would, without allocating
// for the usual name that has no escapes.
func memberName(tok []byte) []byte {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return inner
	}
	return []byte(s)
}

// foldedReadName returns the exact spelling of the read name that name matches under
// encoding/json's case folding (Unicode simple folding: "ſ" is "s", the Kelvin sign
// "K" is "k"), if any.
func foldedReadName(name []byte) (string, bool) {
	if len(name) > 64 {
		return "", false
	}
	var buf [64]byte
	n := 0
	for len(name) > 0 {
		r, size := utf8.DecodeRune(name)
		name = name[size:]
		switch {
		case r == '\u017f': // ſ
			r = 's'
		case r == '\u212a': // Kelvin sign
			r = 'k'
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		case r >= utf8.RuneSelf:
			return "", false // no read name has other non-ASCII letters
		}
		buf[n] = byte(r)
		n++
	}
	canon, ok := readNames[string(buf[:n])]
	return canon, ok
}

func quoteName(name []byte) string {
	b, _ := json.Marshal(string(name))
	if len(b) > 80 {
		return string(b[:77]) + `..."`
	}
	return string(b)
}
