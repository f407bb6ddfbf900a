package controllers_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fedforge/fedforge/internal/app"
)

// These suites run the real controllers against a real kube-apiserver and etcd (envtest)
// with the real CRDs. There is no kube-controller-manager, so garbage collection and
// Deployment rollouts do not happen: tests assert owner references, not collection.

var (
	cfg     *rest.Config
	k8s     client.Client
	testEnv *envtest.Environment
	ctx     context.Context
	cancel  context.CancelFunc
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.TODO())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	k8s, err = client.New(cfg, client.Options{Scheme: app.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := app.NewManager(cfg, app.ManagerOptions{MetricsAddr: "0", ProbeAddr: "0", DefaultServerImage: "fedforge:test"})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
})

var _ = AfterSuite(func() {
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})

// assetsDir finds etcd and kube-apiserver: KUBEBUILDER_ASSETS when set (make test sets
// it), otherwise hack/envtest-binaries.sh builds or reuses them, so that a plain
// `go test ./controllers/` works too.
func assetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	out, err := exec.Command(filepath.Join("..", "hack", "envtest-binaries.sh")).Output()
	Expect(err).NotTo(HaveOccurred(), "hack/envtest-binaries.sh failed")
	return strings.TrimSpace(string(out))
}

// newNamespace gives each test its own namespace, so tests never see each other's objects.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
