package httpguard

import (
	"bytes"
	"strconv"
)

// framer follows the HTTP/1.1 message framing of one connection's request stream, byte
// by byte, as net/http's server parses it, only to learn which request (by its index on
// the connection) carried both Content-Length and Transfer-Encoding. net/http accepts
// such a request (it drops Content-Length and reads chunks, RFC 9112 section 6.3) and
// hides that it did, so a handler cannot see it; RFC 9112 asks the server to close the
// connection, because a front end that frames by Content-Length would see a different
// request boundary (request smuggling).
//
// It keeps no body bytes and at most maxLine bytes of a line. When it cannot follow the
// stream (a line over maxLine, a chunk size net/http would refuse) it stops: net/http
// refuses those requests and closes the connection itself.
type framer struct {
	state   int
	line    []byte
	req     int // index of the request being read
	flagged int // index of the first request with both headers, -1 if none
	stopped bool

	http10       bool
	cl, te       bool
	length       int64
	lastHeaderCL bool // the previous header line was Content-Length (for folded values)
	remain       int64
}

const (
	stRequestLine = iota
	stHeaders
	stBody
	stChunkSize
	stChunkData
	stChunkEnd
	stTrailers
)

// maxLine bounds a buffered line; longer header blocks are refused by net/http anyway
// (MaxHeaderBytes).
const maxLine = MaxHeaderBytes + 4096

func newFramer() framer { return framer{flagged: -1} }

// feed consumes bytes read from the connection.
func (f *framer) feed(p []byte) {
	for len(p) > 0 && !f.stopped && f.flagged < 0 {
		switch f.state {
		case stBody, stChunkData:
			n := int64(len(p))
			if n > f.remain {
				n = f.remain
			}
			f.remain -= n
			p = p[n:]
			if f.remain == 0 {
				if f.state == stBody {
					f.next()
				} else {
					f.state = stChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.appendLine(p)
			return
		}
		f.appendLine(p[:i])
		p = p[i+1:]
		line := bytes.TrimSuffix(f.line, []byte("\r"))
		f.onLine(line)
		f.line = f.line[:0]
	}
}

func (f *framer) appendLine(p []byte) {
	if len(f.line)+len(p) > maxLine {
		f.stopped = true
		f.line = nil
		return
	}
	f.line = append(f.line, p...)
}

// next starts the following request.
func (f *framer) next() {
	f.req++
	f.state = stRequestLine
	f.http10, f.cl, f.te, f.length, f.lastHeaderCL = false, false, false, 0, false
}

func (f *framer) onLine(line []byte) {
	switch f.state {
	case stRequestLine:
		if len(line) == 0 {
			return
		}
		f.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		f.state = stHeaders
	case stHeaders:
		if len(line) == 0 {
			f.endOfHeaders()
			return
		}
		if line[0] == ' ' || line[0] == '\t' { // folded continuation of the previous line
			if f.lastHeaderCL {
				f.length = parseLength(bytes.TrimSpace(line))
			}
			return
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		f.lastHeaderCL = false
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if !f.cl {
				f.length = parseLength(bytes.TrimSpace(value))
			}
			f.cl, f.lastHeaderCL = true, true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.te = true
		}
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimRight(size, " \t")), 16, 63)
		if err != nil {
			f.stopped = true
			return
		}
		if n == 0 {
			f.state = stTrailers
			return
		}
		f.state, f.remain = stChunkData, int64(n)
	case stChunkEnd:
		f.state = stChunkSize // the CRLF after a chunk's data
	case stTrailers:
		if len(line) == 0 {
			f.next()
		}
	}
}

func (f *framer) endOfHeaders() {
	switch {
	case f.cl && f.te:
		f.flagged = f.req
	case f.te && !f.http10: // net/http ignores Transfer-Encoding on HTTP/1.0
		f.state = stChunkSize
	case f.cl && f.length > 0:
		f.state, f.remain = stBody, f.length
	case f.cl && f.length < 0:
		f.stopped = true // net/http refuses the request
	default:
		f.next()
	}
}

func parseLength(v []byte) int64 {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
