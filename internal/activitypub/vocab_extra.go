package activitypub

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// unknownProps returns the top-level properties of the JSON object b that Object does
// not model, each value verbatim, or nil when there are none: what decoding b into a
// map[string]json.RawMessage and deleting the modelled names gives (the last of
// duplicate names wins, names match case-insensitively), without decoding the document
// a second time. b must be valid JSON, as json.Unmarshal has just checked.
func unknownProps(b []byte) map[string]json.RawMessage {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	var extra map[string]json.RawMessage
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return extra // '}' (or, for invalid input, anything else) ends the object
		}
		keyEnd := endOfValue(b, i)
		key := b[i:keyEnd]
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return extra
		}
		i = skipSpace(b, i+1)
		valueEnd := endOfValue(b, i)
		if name := propName(key); !knownProps[strings.ToLower(name)] {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[name] = append(json.RawMessage(nil), b[i:valueEnd]...)
		}
		i = valueEnd
	}
}

// propName decodes a JSON string token (quotes included), as encoding/json would.
func propName(tok []byte) string {
	inner := tok[1 : len(tok)-1]
	if !strings.ContainsRune(string(inner), '\\') && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // valid: the document was checked
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfValue returns the index just after the JSON value starting at b[i].
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = endOfValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// unmarshalString decodes a JSON string into s like json.Unmarshal, without its setup
// cost for the common string that has no escapes (an IRI).
func unmarshalString(b []byte, s *string) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		inner := b[1 : len(b)-1]
		plain := utf8.Valid(inner)
		for _, c := range inner {
			if c < 0x20 || c == '"' || c == '\\' {
				plain = false
				break
			}
		}
		if plain {
			*s = string(inner)
			return nil
		}
	}
	return json.Unmarshal(b, s)
}
