// Package delivery sends what local actors publish to the inboxes of their remote
// followers, and keeps trying until each inbox has it or the retry window is over.
//
// Publishing (Publisher) appends the activity to the store and enqueues one delivery per
// shared inbox (else per inbox) in the same transaction. An Executor leases due rows from
// a Queue, signs each POST for the row's actor, sends it through the one outbound
// activitypub.Client with bounded concurrency overall and per host, and reports the
// outcome: delivered after a 2xx only, retried on a Mastodon-like schedule over about
// two and a half days (RetryPolicy), given up on permanent 4xx. A per-host circuit
// Breaker holds back requests to a failing host, and a host that failed on seven
// distinct days is unavailable until it is heard from again.
//
// The same Executor runs inside `fedforge server` and in a delivery Job (RunJob); a Job
// leases through the server's authenticated internal endpoint (QueueHandler and
// RemoteQueue) because the SQLite file is on the server's ReadWriteOnce volume, or
// directly from PostgreSQL. Deliveries are at least once: a row is marked delivered only
// after a 2xx, and a row whose worker died comes back when its lease expires.
// docs/delivery.md has the design and the schedule.
package delivery
