package httpguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// serve starts a real server on loopback, guarded or as net/http alone, and records the
// paths its handler saw.
func serve(t *testing.T, guarded bool) (addr string, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hs *http.Server
	if guarded {
		hs = Server(h, logr.Discard())
		ln = Listener(ln)
	} else {
		hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

// exchange writes raw bytes on one TCP connection and reads every response until the
// server closes it (or 2 s of silence).
func exchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A server that refuses early may close before everything is written.
	_, _ = io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, resp)
	}
}

const smuggle = "POST /inbox HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"

// TestNetHTTPAnswersTheHiddenRequest records what net/http does alone with a request
// carrying both headers: it frames by chunks and answers the request hidden in what a
// Content-Length front end takes for the body. If this test fails, net/http changed and
// the guard may no longer be needed.
func TestNetHTTPAnswersTheHiddenRequest(t *testing.T) {
	addr, seen := serve(t, false)
	resps := exchange(t, addr, smuggle+"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if len(resps) < 2 || resps[0].StatusCode != 200 {
		t.Fatalf("%d responses", len(resps))
	}
	if got := seen(); len(got) < 2 || got[1] != "GET /hidden" {
		t.Fatalf("handler saw %v", got)
	}
}

func TestGuardClosesContentLengthWithTransferEncoding(t *testing.T) {
	addr, seen := serve(t, true)
	resps := exchange(t, addr, smuggle)
	if len(resps) != 1 || resps[0].StatusCode != http.StatusBadRequest || !resps[0].Close {
		t.Fatalf("got %d responses, first %+v; want one 400 with Connection: close", len(resps), resps)
	}
	if got := seen(); len(got) != 0 {
		t.Fatalf("the handler saw %v", got)
	}
}

// TestGuardFollowsPipelinedRequests: requests framed by Content-Length, by chunks and
// with no body pass on one connection; the one carrying both headers is refused and
// ends the connection, whatever its place.
func TestGuardFollowsPipelinedRequests(t *testing.T) {
	addr, seen := serve(t, true)
	body := `{"type":"Note","content":"Transfer-Encoding: chunked\r\n\r\n"}`
	raw := fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body) +
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1a\r\n" + strings.Repeat("z", 26) + "\r\n0\r\nTrailer: x\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /d HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /e HTTP/1.1\r\nHost: x\r\n\r\n"
	// Fed at once and byte by byte, the framing is the same.
	for _, split := range []bool{false, true} {
		f := newFramer()
		if split {
			for i := 0; i < len(raw); i++ {
				f.feed([]byte{raw[i]})
			}
		} else {
			f.feed([]byte(raw))
		}
		if f.flagged != 3 {
			t.Fatalf("split=%v: flagged request %d, want 3", split, f.flagged)
		}
	}
	resps := exchange(t, addr, raw)
	var codes []int
	for _, r := range resps {
		codes = append(codes, r.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 200 400]" || !resps[3].Close {
		t.Fatalf("statuses %v", codes)
	}
	if got := fmt.Sprint(seen()); got != "[POST /a POST /b GET /c]" {
		t.Fatalf("handler saw %s", got)
	}
}

func TestGuardHeaderLimits(t *testing.T) {
	addr, seen := serve(t, true)
	many := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	tests := map[string]struct {
		headers string
		want    int
	}{
		"a real peer's 12 headers": {headers: many(12), want: 200},
		"99 fields":                {headers: many(98), want: 200},
		"101 fields":               {headers: many(101), want: http.StatusRequestHeaderFieldsTooLarge},
		"10,000 fields":            {headers: many(10000), want: http.StatusRequestHeaderFieldsTooLarge},
		"one 60 KiB field":         {headers: "X-Big: " + strings.Repeat("a", 60<<10) + "\r\n", want: 200},
		"one 1 MiB field":          {headers: "X-Big: " + strings.Repeat("a", 1<<20) + "\r\n", want: http.StatusRequestHeaderFieldsTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resps := exchange(t, addr, "GET /h HTTP/1.1\r\nHost: x\r\n"+tc.headers+"Connection: close\r\n\r\n")
			if len(resps) != 1 || resps[0].StatusCode != tc.want {
				t.Fatalf("got %d responses %v, want one %d", len(resps), resps, tc.want)
			}
		})
	}
	_ = seen
}

// FuzzFramer: any byte stream, fed at once or in two parts, is framed the same way, and
// the framer never panics.
func FuzzFramer(f *testing.F) {
	f.Add([]byte(smuggle), 7)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"), 3)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		a := newFramer()
		a.feed(b)
		if cut < 0 || cut > len(b) {
			return
		}
		c := newFramer()
		c.feed(b[:cut])
		c.feed(b[cut:])
		if a.flagged != c.flagged || a.req != c.req || a.stopped != c.stopped {
			t.Fatalf("split at %d: %+v vs %+v", cut, a, c)
		}
	})
}
