// Package sources turns what forges tell Fedforge into activities: webhooks from GitLab,
// Gitea, Forgejo and GitHub (each verified with the forge's own authentication), polled
// Atom/RSS feeds, and client-to-server outbox POSTs. Every source first produces one
// forge-neutral forge.Event; Render turns an Event into the store.Activity values that
// the server publishes.
package sources
