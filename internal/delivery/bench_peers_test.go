package delivery

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peersChildEnv makes the test binary the peers' process of BenchmarkFanOut's
// "peers-apart" cases: "<hosts> <zone> <idle timeout>".
const peersChildEnv = "FEDFORGE_FANOUT_PEERS_CHILD"

// peersLine prefixes the line where the peers' process prints its resolve map.
const peersLine = "FANOUT-PEERS "

// TestFanOutPeersChild is not a test: it is the body of the peers' process of
// BenchmarkFanOut (peersApart). It serves the peers until its stdin is closed.
func TestFanOutPeersChild(t *testing.T) {
	raw := os.Getenv(peersChildEnv)
	if raw == "" {
		t.Skip("helper process of BenchmarkFanOut (its peers in a process of their own)")
	}
	var (
		n          int
		zone, idle string
	)
	if _, err := fmt.Sscan(raw, &n, &zone, &idle); err != nil {
		t.Fatalf("%s=%q: %v", peersChildEnv, raw, err)
	}
	d, err := time.ParseDuration(idle)
	if err != nil {
		t.Fatal(err)
	}
	peerIdleTimeout = d
	f := newFediverse(t, n, zone, nil)
	line, err := json.Marshal(f.resolve)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(peersLine + string(line))
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// peersApart starts n peers named hNNNN.<zone> in a child process (the test binary
// again, TestFanOutPeersChild) and returns a fediverse that reaches them, whose cpu is
// the child's CPU time. The child ends with the benchmark.
func peersApart(b *testing.B, n int, zone string, idle time.Duration) *fediverse {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanOutPeersChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s %s", peersChildEnv, n, zone, idle))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	f := &fediverse{byName: map[string]*peer{}, resolve: map[string]string{}}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), peersLine); ok {
			if err := json.Unmarshal([]byte(rest), &f.resolve); err != nil {
				b.Fatal(err)
			}
			break
		}
	}
	if len(f.resolve) != n {
		b.Fatalf("the peers' process gave %d addresses, want %d (%v)", len(f.resolve), n, sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	for i := range n {
		name := fmt.Sprintf("h%04d.%s", i, zone)
		p := &peer{name: name, addr: f.resolve[name], accepted: map[string]int{}} // not started here
		f.peers = append(f.peers, p)
		f.byName[name] = p
	}
	pid := cmd.Process.Pid
	f.cpu = func() time.Duration { return procCPU(b, pid) }
	return f
}

// procCPU is the CPU time (user+system) of process pid, from /proc/<pid>/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start after ") ".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12} { // utime, stime (fields 14 and 15 of proc(5))
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}
