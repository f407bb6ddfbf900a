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

// The reasons and actions of the Events Fedforge records (events.k8s.io/v1), in one place
// like the conditions, so that `kubectl events --for subscription/x` and an alert on
// reason=Refused read a vocabulary no package invents on its own. Each constant says
// which process records it on which kind. Events tell the story of an object
// (`kubectl describe`); conditions tell its state.
//
// Both recorders (the manager's and the server's) are client-go's events.k8s.io
// broadcasters: an Event with the same object, type, reason, action and reporter as one
// recorded in the last six minutes is not written again but counted into that Event's
// series (docs/operations.md, "Events").
const (
	// EventFollowReceived (Subscription, server): a Follow for a local actor arrived.
	EventFollowReceived = "FollowReceived"
	// EventFollowSent (Subscription, server): the Follow of an Outbound Subscription was
	// queued for delivery.
	EventFollowSent = "FollowSent"
	// EventAccepted (Subscription, server): Accept sent (Inbound) or received (Outbound).
	EventAccepted = "Accepted"
	// EventRejected (Subscription, or the FederatedActor when no Subscription exists;
	// server): Reject sent or received, or the follow refused by a FederationPolicy, named
	// in the note.
	EventRejected = "Rejected"
	// EventAwaitingApproval (Subscription, server): the actor approves followers by hand;
	// set spec.approved.
	EventAwaitingApproval = "AwaitingApproval"
	// EventUndone (Subscription, server): the follower sent Undo{Follow}, or the Undo of an
	// Outbound Subscription was queued.
	EventUndone = "Undone"
	// EventHostUnreachable (Subscription, server, Warning): deliveries to the remote host
	// failed on 7 distinct days; EventHostReachable when it is heard from again.
	EventHostUnreachable = "HostUnreachable"
	// EventHostReachable (Subscription, server): the remote host answers again.
	EventHostReachable = "HostReachable"
	// EventResolveFailed (Subscription, server, Warning): the remote actor could not be
	// resolved (WebFinger or its document); the server retries.
	EventResolveFailed = "ResolveFailed"
	// EventActorNotFound (Subscription, manager, Warning): spec.actorRef names no
	// FederatedActor.
	EventActorNotFound = "ActorNotFound"
	// EventPublished (FederatedActor, server): activities from a source or the outbox were
	// queued for the actor's followers.
	EventPublished = "Published"
	// EventPublishFailed (FederatedActor, server, Warning): publishing activities failed;
	// the forge's retry publishes them again.
	EventPublishFailed = "PublishFailed"
	// EventServerNotFound (FederatedActor, manager, Warning): spec.serverRef names no
	// FederationServer.
	EventServerNotFound = "ServerNotFound"
	// EventRefused (FederationPolicy, server, Warning): the policy refused requests,
	// follows or deliveries since the last report; at most one Event per policy per
	// report interval (a minute), with the counts in the note.
	EventRefused = "Refused"
	// EventMergeRequestOpened (FederatedActor, server): a merge request offered from the
	// Fediverse was mirrored into a federated branch and opened as a pull request.
	EventMergeRequestOpened = "MergeRequestOpened"
	// EventMergeRequestRejected (FederatedActor, server, Warning): an offered merge
	// request was refused (not accepted here, the clone URL's address refused, the
	// branch too large, missing, badly named, not fetched in time, or conflicting); the
	// note has the reason the Reject carries.
	EventMergeRequestRejected = "MergeRequestRejected"
	// EventMergeRequestUpdated (FederatedActor, server): a Push from the origin updated a
	// federated merge request's branch.
	EventMergeRequestUpdated = "MergeRequestUpdated"
	// EventMergeRequestUpdateFailed (FederatedActor, server, Warning): a Push could not
	// update the federated branch (diverged, too large, unreachable).
	EventMergeRequestUpdateFailed = "MergeRequestUpdateFailed"
)

// Actions of the Events above (the events.k8s.io action field: what was done).
const (
	ActionReceive  = "Receive"
	ActionSend     = "Send"
	ActionDeliver  = "Deliver"
	ActionResolve  = "Resolve"
	ActionPublish  = "Publish"
	ActionRefuse   = "Refuse"
	ActionValidate = "Validate"
	ActionMirror   = "Mirror"
)
