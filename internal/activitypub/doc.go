// Package activitypub is Fedforge's protocol core: the ActivityStreams 2.0 and ForgeFed
// vocabulary with tolerant decoding, HTTP signatures (draft-cavage and RFC 9421) in both
// directions, WebFinger, host-meta and NodeInfo, the one outbound HTTP client every remote
// fetch and delivery goes through, and the remote actor and key cache.
package activitypub
