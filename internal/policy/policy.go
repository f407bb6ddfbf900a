// Package policy decides which remote hosts a FederationServer talks to. The operator uses
// it to validate FederationPolicies and count blocklist entries; the server evaluates it on
// every inbound and outbound exchange. Deny wins over allow.
package policy

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Severity is a Mastodon domain-block severity.
type Severity string

// Severities found in Mastodon's domain blocklist exports.
const (
	SeveritySuspend Severity = "suspend"
	SeveritySilence Severity = "silence"
	SeverityNoop    Severity = "noop"
)

// Entry is one row of an imported blocklist.
type Entry struct {
	Domain   string
	Severity Severity
}

// MaxBlocklistEntries bounds an import so a huge ConfigMap cannot exhaust memory.
const MaxBlocklistEntries = 200000

// ParseBlocklist reads a blocklist in Mastodon's CSV export format
// (`#domain,#severity,#reject_media,...`, header optional, `#` optional in the header), or
// a plain list of one domain per line as GoToSocial accepts. Blank lines and lines starting
// with "//" are ignored. A plain domain counts as a suspension.
func ParseBlocklist(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	if !strings.Contains(firstLine(string(head)), ",") {
		return parsePlain(br)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	domainCol, severityCol := 0, 1
	var out []Entry
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("blocklist line %d: %w", line, err)
		}
		if line == 1 && isHeader(rec) {
			domainCol, severityCol = -1, -1
			for i, h := range rec {
				switch strings.TrimPrefix(strings.TrimSpace(strings.ToLower(h)), "#") {
				case "domain":
					domainCol = i
				case "severity":
					severityCol = i
				}
			}
			if domainCol < 0 {
				return nil, errors.New("blocklist header has no domain column")
			}
			continue
		}
		if domainCol >= len(rec) {
			return nil, fmt.Errorf("blocklist line %d: no domain column", line)
		}
		sev := SeveritySuspend
		if severityCol >= 0 && severityCol < len(rec) && strings.TrimSpace(rec[severityCol]) != "" {
			sev = Severity(strings.ToLower(strings.TrimSpace(rec[severityCol])))
		}
		switch sev {
		case SeveritySuspend, SeveritySilence, SeverityNoop:
		default:
			return nil, fmt.Errorf("blocklist line %d: unknown severity %q (want suspend, silence or noop)", line, sev)
		}
		e, err := entry(rec[domainCol], sev, line)
		if err != nil {
			return nil, err
		}
		if e.Domain == "" {
			continue
		}
		if out = append(out, e); len(out) > MaxBlocklistEntries {
			return nil, fmt.Errorf("blocklist has more than %d entries", MaxBlocklistEntries)
		}
	}
	return out, nil
}

func parsePlain(r io.Reader) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	var out []Entry
	for line := 1; sc.Scan(); line++ {
		e, err := entry(sc.Text(), SeveritySuspend, line)
		if err != nil {
			return nil, err
		}
		if e.Domain == "" {
			continue
		}
		if out = append(out, e); len(out) > MaxBlocklistEntries {
			return nil, fmt.Errorf("blocklist has more than %d entries", MaxBlocklistEntries)
		}
	}
	return out, sc.Err()
}

func entry(raw string, sev Severity, line int) (Entry, error) {
	d := strings.ToLower(strings.TrimSpace(raw))
	if d == "" || strings.HasPrefix(d, "//") || strings.HasPrefix(d, "#") {
		return Entry{}, nil
	}
	d = strings.TrimPrefix(d, "*.")
	if !validDomain(d) {
		return Entry{}, fmt.Errorf("blocklist line %d: %q is not a domain name (obfuscated entries cannot be enforced)", line, raw)
	}
	return Entry{Domain: d, Severity: sev}, nil
}

func isHeader(rec []string) bool {
	for _, h := range rec {
		h = strings.TrimSpace(strings.ToLower(h))
		if strings.HasPrefix(h, "#") || h == "domain" || h == "severity" {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "//") {
			return t
		}
	}
	return ""
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	if h, _, err := net.SplitHostPort(d); err == nil {
		d = h
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
