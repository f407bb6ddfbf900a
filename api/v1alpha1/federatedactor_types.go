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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActorType is the ActivityStreams or ForgeFed type of an actor.
// +kubebuilder:validation:Enum=Person;Service;Application;Group;Organization;Repository;Project;Team;TicketTracker;PatchTracker
type ActorType string

// Actor types. Mastodon follows only Person, Service, Application, Group and Organization;
// the server publishes the ForgeFed types together with Service so that Mastodon users can
// follow them too.
const (
	ActorPerson        ActorType = "Person"
	ActorService       ActorType = "Service"
	ActorApplication   ActorType = "Application"
	ActorGroup         ActorType = "Group"
	ActorOrganization  ActorType = "Organization"
	ActorRepository    ActorType = "Repository"
	ActorProject       ActorType = "Project"
	ActorTeam          ActorType = "Team"
	ActorTicketTracker ActorType = "TicketTracker"
	ActorPatchTracker  ActorType = "PatchTracker"
)

// SourceType is the kind of forge event source.
// +kubebuilder:validation:Enum=GitLab;Gitea;Forgejo;GitHub;Feed
type SourceType string

// Source types.
const (
	SourceGitLab  SourceType = "GitLab"
	SourceGitea   SourceType = "Gitea"
	SourceForgejo SourceType = "Forgejo"
	SourceGitHub  SourceType = "GitHub"
	SourceFeed    SourceType = "Feed"
)

// Visibility is the audience of what a source publishes.
// +kubebuilder:validation:Enum=Public;Unlisted;Followers
type Visibility string

// Visibilities, mapped to to/cc addressing as Mastodon does.
const (
	VisibilityPublic    Visibility = "Public"
	VisibilityUnlisted  Visibility = "Unlisted"
	VisibilityFollowers Visibility = "Followers"
)

// FederatedActorSpec declares one actor of a FederationServer.
// +kubebuilder:validation:XValidation:rule="!has(self.mergeRequests) || has(self.forge)",message="mergeRequests needs spec.forge: merge requests are read from and written into that forge project"
type FederatedActorSpec struct {
	// serverRef names the FederationServer (same namespace) that serves this actor.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverRef is immutable: the actor ID is made from the server's host"
	ServerRef LocalObjectReference `json:"serverRef"`

	// type of the actor. ForgeFed types (Repository, Project, Team, TicketTracker,
	// PatchTracker) are published as [type, "Service"] so that Mastodon can follow them.
	// +optional
	// +kubebuilder:default=Service
	Type ActorType `json:"type,omitempty"`

	// preferredUsername is the local part of the actor's handle (`@name@host`) and of its
	// ID. WebFinger `acct:` names cannot hold "/": name projects with dashes, for example
	// `releases-group-project`. It cannot change: followers know the actor by it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_]([a-zA-Z0-9_.-]*[a-zA-Z0-9_])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="preferredUsername is immutable: followers know the actor by it"
	PreferredUsername string `json:"preferredUsername"`

	// name is the display name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// summary is the profile text, plain text; the server escapes it.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Summary string `json:"summary,omitempty"`

	// url is the human-facing page of the actor, usually the forge project page.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url,omitempty"`

	// icon is the avatar shown by Fediverse clients.
	// +optional
	Icon *ActorIcon `json:"icon,omitempty"`

	// manuallyApprovesFollowers makes each follow wait for a person to set
	// `spec.approved` on its Subscription.
	// +optional
	ManuallyApprovesFollowers bool `json:"manuallyApprovesFollowers,omitempty"`

	// discoverable lets Fediverse directories and search list the actor.
	// +optional
	// +kubebuilder:default=true
	Discoverable *bool `json:"discoverable,omitempty"`

	// sources are the forge webhooks and feeds whose events this actor publishes.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Sources []EventSource `json:"sources,omitempty"`

	// keyPolicy controls the actor's signing keys.
	// +optional
	KeyPolicy *KeyPolicy `json:"keyPolicy,omitempty"`

	// forge declares the forge project this actor fronts and how Fedforge may call its
	// API: to check access (the ForgeReachable condition), to read what the actor
	// document shows (cloneUri, forkedFrom) and, in phase 2, to open issues, comments and
	// merge requests asked for from the Fediverse. Unset: the actor only publishes what
	// its sources send.
	// +optional
	Forge *ForgeAccess `json:"forge,omitempty"`

	// tickets says whether the actor takes tickets from the Fediverse: a ForgeFed
	// Offer{Ticket} opens an issue in spec.forge's project, and replies to its Ticket
	// become comments. Unset, a Repository or TicketTracker actor with spec.forge takes
	// them (the token was given write:issue for this); other actors never do.
	// +optional
	Tickets *TicketsSpec `json:"tickets,omitempty"`

	// mergeRequests declares the actor's part in cross-instance merge requests
	// (docs/merge-requests.md): on the upstream side, whether offered merge requests are
	// fetched over Git and opened as pull requests in spec.forge's project (accept); on
	// the fork side, which Repository actor this repository was forked from (upstream)
	// and which forge label marks a pull request to be offered there (label).
	// +optional
	MergeRequests *MergeRequestsSpec `json:"mergeRequests,omitempty"`

	// Account migration (issue 19; docs/decisions.md, "Moving an actor").

	// movedTo is the id (URL) of the actor this one moved to, on this or another
	// instance. Set, the actor document shows it, new Follows are answered with Reject,
	// and the server sends Move{object: this actor, target: movedTo} once to every
	// follower, after checking that the target names this actor in its alsoKnownAs (the
	// Moved condition says whether it did). Moving to the actor itself is refused there:
	// its id depends on the server's host.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+/[^\s]*$`
	MovedTo string `json:"movedTo,omitempty"`

	// alsoKnownAs are ids (URLs) of other actors that are the same account: the actor
	// this one moves from names it here, so that the move is believed (Mastodon's
	// account aliases).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:Pattern=`^https?://[^\s/]+/[^\s]*$`
	AlsoKnownAs []string `json:"alsoKnownAs,omitempty"`
}

// ForgeType names the API a forge speaks.
// +kubebuilder:validation:Enum=Gitea;Forgejo;GitLab;GitHub
type ForgeType string

// Forge types. Gitea and Forgejo share one API (/api/v1) and one client.
const (
	ForgeGitea   ForgeType = "Gitea"
	ForgeForgejo ForgeType = "Forgejo"
	ForgeGitLab  ForgeType = "GitLab"
	ForgeGitHub  ForgeType = "GitHub"
)

// DefaultForgeTokenKey is the Secret key read when tokenSecretRef names no key.
const DefaultForgeTokenKey = "token"

// ForgeAccess is one forge project and the token Fedforge calls its API with.
// +kubebuilder:validation:XValidation:rule="self.type == 'GitLab' || self.project.matches('^[^/]+/[^/]+$')",message="project must be owner/name (only GitLab has nested groups: group/subgroup/name)"
type ForgeAccess struct {
	// type of forge: Gitea, Forgejo, GitLab or GitHub.
	// +required
	Type ForgeType `json:"type"`

	// url is the forge's base URL, as users open it (https://codeberg.org,
	// https://gitlab.example.org, https://github.com); Fedforge adds the API path. It
	// must be http(s); a forge on a private or loopback address is reached only when the
	// FederationServer's allowedPrivateCIDRs lists its range.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/[^\s]*)?$`
	URL string `json:"url"`

	// project is the repository's path on the forge, owner/name (GitLab:
	// group/subgroup/name), as in its web URL.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`
	Project string `json:"project"`

	// tokenSecretRef names the Secret (same namespace) holding the API token, under key
	// (default "token"). Give the least the token needs: on Gitea and Forgejo the scopes
	// read:repository and write:issue (see docs/forges.md). The token is never logged nor
	// copied into status; the operator reads this one Secret when it checks the forge.
	// +required
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`
}

// ActorIcon is an image reference.
type ActorIcon struct {
	// url of the image.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url"`

	// mediaType of the image, for example image/png.
	// +optional
	// +kubebuilder:validation:MaxLength=127
	// +kubebuilder:validation:Pattern=`^image/[-+.a-zA-Z0-9]+$`
	MediaType string `json:"mediaType,omitempty"`
}

// EventSource declares one forge webhook or feed that feeds the actor's outbox.
// +kubebuilder:validation:XValidation:rule="self.type == 'Feed' ? has(self.feed) : !has(self.feed)",message="feed is required for type Feed and only allowed there"
// +kubebuilder:validation:XValidation:rule="self.type == 'Feed' || has(self.secretRef)",message="webhook sources need secretRef: the server refuses unauthenticated webhooks"
// +kubebuilder:validation:XValidation:rule="!has(self.topics) || self.type == 'Gitea' || self.type == 'Forgejo'",message="topics needs a Gitea or Forgejo source: their payloads list a repository's topics"
type EventSource struct {
	// name identifies the source within the actor; it is part of the webhook path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// type of the source: a forge's webhook (GitLab, Gitea, Forgejo, GitHub) or an
	// Atom/RSS Feed.
	// +required
	Type SourceType `json:"type"`

	// secretRef holds the webhook secret (GitLab token, Gitea/Forgejo/GitHub HMAC key).
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// feed declares the Atom or RSS feed to poll.
	// +optional
	Feed *FeedSource `json:"feed,omitempty"`

	// events to publish. Empty means all of them: Release, Push (the ForgeFed Push; a
	// post too only when Push is listed), MergeRequest and Issue (opened, merged,
	// closed and reopened: a post, and Resolve / Undo{Resolve} of the Ticket),
	// Comment (comments on issues and merge requests, as Notes in reply to the Ticket:
	// they are the ticket discussion), Fork (an Add to the forks collection and a post),
	// and Star (counted in the Repository's likes, never posted); Tag only when
	// Release is not selected, because every release already announces its tag.
	// Repository is a repository created, which only organization- and system-level
	// hooks deliver (docs/sources.md, "Organization and topic actors").
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:Enum=Release;Tag;Push;MergeRequest;Issue;Comment;Fork;Star;Repository
	Events []string `json:"events,omitempty"`

	// topics makes the source publish only events of repositories that carry one of
	// these forge topics, which is how an actor stands for a topic: with Repository
	// selected, its followers learn when a repository is created in (or first seen
	// carrying) one of them. Point an organization- or system-level hook at such a
	// source. Gitea and Forgejo only (their payloads list the topics); compared
	// case-insensitively, as those forges store topics in lower case.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=50
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9][A-Za-z0-9.-]*$`
	Topics []string `json:"topics,omitempty"`

	// visibility of what the source publishes.
	// +optional
	// +kubebuilder:default=Public
	Visibility Visibility `json:"visibility,omitempty"`
}

// FeedSource is an Atom or RSS feed polled for new entries.
type FeedSource struct {
	// url of the feed.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url"`

	// interval between polls.
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="feed interval must be at least 1m"
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// KeyPolicy controls how often signing keys rotate and how long old keys stay published.
type KeyPolicy struct {
	// rotationPeriod is the age at which keys are replaced; never when unset. Rotation can
	// also be asked for at any time with the annotation federation.fedforge.dev/rotate-keys.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="rotationPeriod must be at least 1h"
	RotationPeriod *metav1.Duration `json:"rotationPeriod,omitempty"`

	// overlap is how long the previous public key stays published after a rotation, so
	// that peers holding signed requests in flight still verify them.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('2160h')",message="overlap must be between 0s and 90 days"
	Overlap *metav1.Duration `json:"overlap,omitempty"`
}

// ActorKeys describes the public half of an actor's signing keys.
type ActorKeys struct {
	// rsaKeyId is the draft-cavage keyId, `<actor id>#main-key`.
	// +optional
	RSAKeyID string `json:"rsaKeyId,omitempty"`
	// ed25519KeyId is the RFC 9421 / FEP-521a key id, `<actor id>#ed25519-key`.
	// +optional
	Ed25519KeyID string `json:"ed25519KeyId,omitempty"`
	// rsaFingerprint is the SHA-256 of the RSA public key (DER), to tell keys apart.
	// +optional
	RSAFingerprint string `json:"rsaFingerprint,omitempty"`
	// ed25519Fingerprint is the SHA-256 of the Ed25519 public key (DER).
	// +optional
	Ed25519Fingerprint string `json:"ed25519Fingerprint,omitempty"`
	// createdAt is when the current keys were made.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// previousExpiresAt is when the previous public keys stop being published.
	// +optional
	PreviousExpiresAt *metav1.Time `json:"previousExpiresAt,omitempty"`
}

// FederatedActorStatus reports the actor's public identity and readiness.
type FederatedActorStatus struct {
	// id is the actor URI.
	// +optional
	ID string `json:"id,omitempty"`
	// handle is preferredUsername@host, as Fediverse users type it.
	// +optional
	Handle string `json:"handle,omitempty"`
	// inbox URL.
	// +optional
	Inbox string `json:"inbox,omitempty"`
	// outbox URL.
	// +optional
	Outbox string `json:"outbox,omitempty"`
	// followers is the number of accepted inbound Subscriptions.
	// +optional
	Followers *int32 `json:"followers,omitempty"`
	// keySecretName is the Secret holding the actor's signing keys.
	// +optional
	KeySecretName string `json:"keySecretName,omitempty"`
	// keys describes the public keys currently published.
	// +optional
	Keys *ActorKeys `json:"keys,omitempty"`
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// forge is what the forge's API said about spec.forge's project at the last
	// successful check; the actor document of a Repository actor shows it.
	// +optional
	Forge *ForgeStatus `json:"forge,omitempty"`
	// conditions: Ready (the actor is served: its server exists and its keys are ready,
	// and its preferredUsername is unique on the server), KeyReady (the key Secret exists
	// and holds valid keys), ForgeReachable (spec.forge answers an authenticated call;
	// absent without spec.forge), Moved (spec.movedTo was confirmed by the target and the
	// Move sent to the followers; absent without spec.movedTo).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ForgeStatus is what the forge's API reports about the project an actor fronts, read by
// the operator so that the actor document is filled from the forge, not hand-typed. It
// never holds the token.
type ForgeStatus struct {
	// webUrl is the project's page on the forge.
	// +optional
	WebURL string `json:"webUrl,omitempty"`
	// cloneUri is the URL to `git clone` over HTTP(S) (ForgeFed cloneUri).
	// +optional
	CloneURI string `json:"cloneUri,omitempty"`
	// forkedFrom is the page of the repository this one is a fork of, when the forge
	// says it is a fork (ForgeFed forkedFrom).
	// +optional
	ForkedFrom string `json:"forkedFrom,omitempty"`
	// checkedAt is when the operator last checked the forge (answered or not); the
	// other fields keep what it said at the last check that succeeded.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`
}

// AnnotationRotateKeys asks for a key rotation when its value changes.
const AnnotationRotateKeys = "federation.fedforge.dev/rotate-keys"

// FederatedActor is one Fediverse actor (a project's releases, a repository, a team)
// served by a FederationServer, with signing keys the operator keeps in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fedactor;fa,categories=federation
// +kubebuilder:printcolumn:name="Handle",type=string,JSONPath=`.status.handle`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Followers",type=integer,JSONPath=`.status.followers`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.id`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FederatedActor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the actor.
	// +required
	Spec FederatedActorSpec `json:"spec"`
	// status is written by the operator.
	// +optional
	Status FederatedActorStatus `json:"status,omitempty"`
}

// FederatedActorList is a list of FederatedActors.
// +kubebuilder:object:root=true
type FederatedActorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FederatedActor `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FederatedActor{}, &FederatedActorList{})
}
