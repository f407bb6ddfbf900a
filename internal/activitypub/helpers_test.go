package activitypub

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

func isKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

func asErr(err error, e **Error) bool { return errors.As(err, e) }

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

// vectorRequestFuzz is the RFC 9421 test request, built without a testing.T.
func vectorRequestFuzz() *http.Request {
	req, _ := http.NewRequest("POST", "https://example.com/foo?param=Value&Pet=dog", strings.NewReader(`{"hello": "world"}`))
	req.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	req.Header.Set("Content-Type", "application/json")
	return req
}
