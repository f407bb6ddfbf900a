package main

import (
	"bufio"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type sent struct {
	statuses  map[string]int
	latencies []time.Duration
	elapsed   time.Duration
}

// send writes reqs on conns keep-alive connections to addr, one request in flight per
// connection, and reads every answer. A broken connection is redialled once per request.
func send(addr string, reqs [][]byte, conns int, timeout time.Duration) sent {
	var (
		next      atomic.Int64
		mu        sync.Mutex
		statuses  = map[string]int{}
		latencies = make([]time.Duration, len(reqs))
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				t0 := time.Now()
				status := "error"
				for attempt := 0; attempt < 2 && status == "error"; attempt++ {
					if c == nil {
						var err error
						if c, err = net.DialTimeout("tcp", addr, timeout); err != nil {
							c = nil
							continue
						}
						br = bufio.NewReader(c)
					}
					_ = c.SetDeadline(time.Now().Add(timeout))
					if _, err := c.Write(reqs[i]); err == nil {
						if resp, err := http.ReadResponse(br, nil); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							status = strconv.Itoa(resp.StatusCode)
							if resp.Close {
								c.Close()
								c = nil
							}
							continue
						}
					}
					c.Close()
					c = nil
				}
				latencies[i] = time.Since(t0)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sent{statuses: statuses, latencies: latencies, elapsed: time.Since(start)}
}

// procCPU is the user+system CPU time of process pid (every thread), from
// /proc/<pid>/stat in clock ticks (USER_HZ, 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("target process: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime/stime not numbers", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// rawVerifyCPU is the CPU one signature verification of sig's key type costs on this
// machine, measured with every core busy (as the server is during the run): m
// verifications spread over NumCPU goroutines, their process CPU divided by m.
func rawVerifyCPU(sig string, m int) time.Duration {
	msg := sha256.Sum256([]byte("signing string"))
	var verify func()
	if sig == "rfc9421-ed25519" {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		s := ed25519.Sign(k, msg[:])
		pub := k.Public().(ed25519.PublicKey)
		verify = func() { _ = ed25519.Verify(pub, msg[:], s) }
	} else {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		s, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, msg[:])
		verify = func() { _ = rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, msg[:], s) }
	}
	cpu0, _ := procCPU(os.Getpid())
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(m) {
				verify()
			}
		}()
	}
	wg.Wait()
	cpu1, _ := procCPU(os.Getpid())
	return (cpu1 - cpu0) / time.Duration(m)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
