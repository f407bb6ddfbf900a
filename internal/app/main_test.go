package app

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs this package's parallel tests 4 at a time unless -parallel is given (or
// FEDFORGE_TEST_PARALLEL): they mostly wait (Gitea's webhooks, eventually-loops), about
// half a core each, so on 2 cores 4 at a time cut the package from 848 s to 353 s while 8
// were no faster and timed out (docs/benchmarks.md, "make test: internal/app wall
// time"). It is set here, not by `go test -parallel` in hack/test.sh, because Ginkgo
// refuses an explicit -parallel in the packages with Ginkgo suites (controllers).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		n := os.Getenv("FEDFORGE_TEST_PARALLEL")
		if n == "" {
			n = "4"
		}
		if err := flag.Set("test.parallel", n); err != nil {
			panic("FEDFORGE_TEST_PARALLEL: " + err.Error())
		}
	}
	os.Exit(m.Run())
}
