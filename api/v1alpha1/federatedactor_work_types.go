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

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
)

// The parts of a FederatedActor's spec for work across instances: tickets (issues) and
// merge requests taken from or offered to other instances.

// MergeRequestsSpec controls cross-instance merge requests (docs/merge-requests.md).
type MergeRequestsSpec struct {
	// accept takes merge requests offered from the Fediverse (ForgeFed Offer of a Ticket
	// whose attachment names the origin branch): the branch is fetched over Git into
	// federated/<host>/<user>/<branch> in spec.forge's project and a pull request is
	// opened there. Off by default, because the token then needs write:repository (to
	// push that branch) besides write:issue.
	// +optional
	Accept bool `json:"accept,omitempty"`

	// upstream is the id (URL) of the Repository actor this actor's repository was
	// forked from, on another instance. Set, Fedforge announces the fork to it, offers it
	// the pull requests that carry spec.mergeRequests.label, tells it of pushes to their
	// branches, and carries the discussion and the merge back. Unset, the upstream is
	// taken from the forge's own record of where the repository was cloned from, when
	// that matches a Repository actor's cloneUri.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/[^\s]*)?$`
	Upstream string `json:"upstream,omitempty"`

	// label is the forge label that marks a pull request in this repository as offered
	// to the upstream; default "upstream".
	// +optional
	// +kubebuilder:default=upstream
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	Label string `json:"label,omitempty"`

	// maxBranchSize caps what the other instance's forge may send when an offered
	// branch is fetched (refs advertisement and pack, as on the wire); a larger branch
	// is refused with a Reject. Default 64Mi.
	// +optional
	MaxBranchSize *resource.Quantity `json:"maxBranchSize,omitempty"`
}

// TicketsSpec controls the tickets an actor takes (docs/forgefed.md).
type TicketsSpec struct {
	// enabled turns tickets off (false) for a Repository or TicketTracker actor with
	// spec.forge; true is the default for those actors and changes nothing for others.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// fromMentions also opens an issue for a Note that mentions the actor (how a
	// Mastodon user files a bug: "@repo@host the build fails on arm64"), answered with a
	// reply Note linking the new issue; replies in that thread become its comments. Off
	// by default: on Mastodon a mention is also how people talk about a project, and
	// every such post would become an issue (docs/forgefed.md).
	// +optional
	FromMentions bool `json:"fromMentions,omitempty"`
}
