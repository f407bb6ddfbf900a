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
	. "github.com/onsi/ginkgo/v2"
)

// The federation scenarios of the e2e issue. They are pending (reported, never run) until
// the features they need exist; README.md in this directory lists what each one needs.
// Two instances will live in namespaces e2e-alpha and e2e-beta, with hosts
// alpha.fedforge.test and beta.fedforge.test that pods resolve through the `hosts` key of
// the coredns ConfigMap (hack/lib/cluster-addons.yaml), pointed at each server's Service.
var _ = Describe("Federation between two instances", func() {
	PIt("follows both ways: Outbound Accepted on one side, Inbound on the other, followers counts agree")
	PIt("carries a GitLab release webhook to the other instance through a delivery Job that completes, into its inbox")
	PIt("rejects the next Follow under a FederationPolicy denylist applied with kubectl, and accepts it once removed")
	PIt("keeps verifying after a key rotation: the peer refetches the key")
	PIt("removes everything a FederationServer owns when it is deleted")
})

var _ = Describe("An independent peer (Fedify)", func() {
	PIt("follows a Fedforge actor from outside the cluster, verifies the Accept and a release post with Fedify's signature checks, and unfollows")
})
