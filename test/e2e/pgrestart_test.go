//go:build e2e

/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

// pgRestartUnderLoad is scenario 4 of issue 15: the PostgreSQL that hack/cluster-postgres.sh
// started is stopped (pg_ctl -m fast: every connection of the servers is cut) and started
// again while the other instance's actor posts to pg's inbox every 50 ms. The POSTs go to
// the three pods' own addresses, round robin, so that what each server answers is seen
// (through the Service, pods that are not ready have no traffic at all: kube-proxy
// refuses). Every answer must be 202 or 503, none a 500 or a connection error or a
// timeout (10 s); every pod's readiness goes false while the database is down and comes
// back; no container restarts; every 202 is in the store afterwards.
func pgRestartUnderLoad(ctx context.Context, pg, fans instance, fan, dsn string) {
	GinkgoHelper()
	script := filepath.Join(root, "hack", "cluster-postgres.sh")
	pods := serverPods(ctx, pg.ns)
	Expect(pods).To(HaveLen(3))
	restarts := map[string]int32{}
	var addrs []string
	for _, p := range pods {
		Expect(podReady(p)).To(BeTrue(), "pod %s ready before the restart", p.Name)
		restarts[p.Name] = restartCount(p)
		addrs = append(addrs, net.JoinHostPort(p.Status.PodIP, "8080"))
	}
	load := startInboxLoad(ctx, fans, fan, pg, "pgrestart", func() []string { return addrs })
	Eventually(func() int { return load.count(http.StatusAccepted) }).WithContext(ctx).Should(BeNumerically(">=", 20), "the load is flowing before the restart")

	By("stopping PostgreSQL (pg_ctl stop -m fast) under the load")
	out, err := exec.CommandContext(ctx, script, "stop").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s stop: %s", script, out)
	down := time.Now()
	Eventually(func(g Gomega) {
		for _, p := range serverPods(ctx, pg.ns) {
			g.Expect(podReady(p)).To(BeFalse(), "pod %s still ready", p.Name)
		}
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(500*time.Millisecond).Should(Succeed(), "every replica's readiness false")
	unready := time.Since(down)
	Eventually(func() int { return load.count(http.StatusServiceUnavailable) }).WithContext(ctx).Should(BeNumerically(">", 0), "503 while the database is down")

	By("starting PostgreSQL again, on the same address and port")
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = GinkgoWriter
	again, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "%s", script)
	Expect(strings.TrimSpace(string(again))).To(Equal(dsn), "the same DSN after the restart")
	up := time.Now()
	acceptedBefore := load.count(http.StatusAccepted)
	Eventually(func(g Gomega) {
		ps := serverPods(ctx, pg.ns)
		g.Expect(ps).To(HaveLen(3))
		for _, p := range ps {
			g.Expect(podReady(p)).To(BeTrue(), "pod %s not ready yet", p.Name)
		}
	}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(500*time.Millisecond).Should(Succeed(), "every replica ready again")
	ready := time.Since(up)
	Eventually(func() int { return load.count(http.StatusAccepted) - acceptedBefore }).WithContext(ctx).Should(BeNumerically(">=", 30), "202 again from every replica")
	load.stop()

	By("only 202 and 503, no pod restarted, every 202 in the store")
	answers := load.snapshot()
	Expect(load.tally(http.StatusAccepted, http.StatusServiceUnavailable)).To(BeEmpty(), "answers other than 202 or 503 (a 500, a refused connection, a timeout), of %d POSTs", len(answers))
	now := serverPods(ctx, pg.ns)
	Expect(now).To(HaveLen(3))
	for _, p := range now {
		before, ok := restarts[p.Name]
		Expect(ok).To(BeTrue(), "pod %s is new: a replica was replaced", p.Name)
		Expect(restartCount(p)).To(Equal(before), "pod %s restarted", p.Name)
	}
	stored := load.expectAcceptedStored(ctx, dsn)
	GinkgoWriter.Printf("PostgreSQL restart under load: %d POSTs, %d answered 202 (all stored), %d answered 503; all replicas unready %s after the stop, ready %s after the start\n",
		len(answers), stored, load.count(http.StatusServiceUnavailable), unready.Round(100*time.Millisecond), ready.Round(100*time.Millisecond))
}

// podReady says whether the pod's Ready condition is True.
func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restartCount sums the restarts of the pod's containers.
func restartCount(p corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}
