// Package sources holds the two HTTP handlers through which something outside the
// Fediverse hands Fedforge an activity to publish: WebhookHandler, for forge webhooks
// (parsed by the adapter the forge registry names for the source's type, then rendered
// by internal/render), and OutboxHandler, for client-to-server outbox POSTs. Both are
// routes of the server (internal/server/routes.go), which gives them their lookups; the
// forges themselves are internal/forge and its adapter packages (docs/decisions.md).
package sources
