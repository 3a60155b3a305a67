// Package webhooks will hold the HTTP handlers Microsoft Graph posts change
// and lifecycle notifications to (/webhooks/graph/notifications and
// /webhooks/graph/lifecycle): validation handshake, clientState check,
// durable enqueue into the inbox, and a fast 202. See issue "Sync back".
// Nothing is routed here yet.
package webhooks
