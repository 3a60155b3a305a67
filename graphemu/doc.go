// Package graphemu emulates the parts of the Microsoft identity platform and
// Microsoft Graph v1.0 that calsync uses, closely enough that the real
// msgraph-sdk-go and azidentity talk to it over TLS unchanged. It is written
// from Microsoft's documented wire format (JSON shapes, OData and AADSTS
// error bodies, headers, status codes) and shares no code with calsync's own
// Graph client, so the fake cannot merely repeat the client's
// misunderstandings.
//
// # Identity
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	GET  /common/discovery/instance            (instance discovery)
//	POST /{tenant}/oauth2/v2.0/token           (client_credentials, scope https://graph.microsoft.com/.default)
//
// Tokens are RS256 JWTs (aud https://graph.microsoft.com, tid, appid) whose
// roles claim lists the app's consented application permissions. Failures
// answer as Entra ID does: AADSTS7000215 (wrong secret, 401 invalid_client),
// AADSTS7000222 (expired secret, 401 invalid_client), AADSTS90002 (unknown
// tenant, 400 invalid_request; also on the openid-configuration document),
// AADSTS700016 (app not in tenant, 400 unauthorized_client).
//
// # Graph (under /v1.0, bearer token checked on every call)
//
//	GET    /users/{id|userPrincipalName|mail}                needs User.Read.All (as in Graph)
//	GET    /users/{id}/calendar                              needs Calendars.Read[Write]
//	GET    /users/{id}/events, /users/{id}/calendar/events   $filter on singleValueExtendedProperties, $expand, $top
//	POST   same                                              transactionId makes a repeated create return the first event
//	GET    PATCH DELETE /users/{id}/events/{eventId}         If-Match with a stale changeKey -> 412; an instance id: PATCH makes an exception, DELETE cancels it
//	GET    /users/{id}/events/{eventId}/instances?startDateTime&endDateTime   a series' occurrences and exceptions
//	POST   /users/{id}/events/{eventId}/dismissReminder      200; a new changeKey, nothing visible changed
//	GET    /users/{id}/calendarView?startDateTime&endDateTime                  single events and series instances, $top/$skip
//	GET    /users/{id}/calendarView/delta?startDateTime&endDateTime   nextLink/deltaLink, Prefer: odata.maxpagesize, @removed
//	POST   /subscriptions, GET/PATCH/DELETE /subscriptions/{id}, POST /subscriptions/{id}/reauthorize
//	POST   /$batch                                           at most 20 requests, each throttled on its own
//
// Events may recur (event.recurrence, a patternedRecurrence: recurrence.go
// says which Microsoft pages it follows); /events lists masters, calendar
// views list instances.
//
// Honoured headers: Prefer: IdType="ImmutableId", Prefer: outlook.timezone,
// Prefer: odata.maxpagesize, If-Match, Content-Encoding: gzip (the SDK
// compresses request bodies). Errors use Graph's body
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
//
// Subscriptions: creation performs the validation handshake on the
// notificationUrl and lifecycleNotificationUrl (POST ?validationToken=…; the
// decoded token must come back as text/plain with 200 within 10 s), caps the
// expiration at 10,080 minutes and clientState at 128 characters, and allows
// 1,000 subscriptions per mailbox. Every change to an event — made through
// Graph or through the control API — is delivered to matching subscriptions
// in the documented shape, several per POST when they queue up; a delivery
// that fails or takes over 3 s is retried later with backoff. Expired
// subscriptions disappear. A notificationUrl must be https, except on a
// loopback host (the emulator's one allowance for local development).
//
// Throttling per app and mailbox: 10,000 requests per 10 minutes and 4
// concurrent requests; excess requests get 429 ApplicationThrottled with
// Retry-After.
//
// # Control API (JSON, no auth, under /_emulator/)
//
//	POST   /_emulator/tenants                        {"tenantId","domain","apps":[{"clientId","secret","secretExpiresAt"?,"roles":[…],"allowedMailboxes"?:[…]}],"users":[{"id"?,"mail","displayName"}]} -> 201 {"tenantId","users":[{"id","mail"}]}
//	POST   /_emulator/users/{idOrMail}/events        create as the owner would in Outlook (Graph event JSON) -> 201 event; notifies
//	PATCH  /_emulator/users/{idOrMail}/events/{id}   edit as the owner -> 200 event; notifies
//	DELETE /_emulator/users/{idOrMail}/events/{id}   delete as the owner -> 204; notifies
//	POST   /_emulator/users/{idOrMail}/events/{id}/dismissReminder   dismiss its reminder as the owner -> 204; new changeKey, notifies
//	GET    /_emulator/users/{idOrMail}/events        {"value":[…]} every stored event with its extended properties
//	PATCH  /_emulator/users/{idOrMail}                {"mailbox": true|false} give or take the user's Exchange Online mailbox
//	       (a user spec may say "mailbox": false — calendar calls answer 404 MailboxNotEnabledForRESTAPI — or
//	       "mailboxReadyAfterSeconds": N — 404 ResourceNotFound until provisioning ends)
//	PATCH  /_emulator/tenants/{tid}/apps/{cid}       {"roles":[…]} grant or revoke permissions; losing Calendars.* removes the app's subscriptions (subscriptionRemoved)
//	GET    /_emulator/subscriptions                  {"value":[…]} live subscriptions
//	POST   /_emulator/subscriptions/{id}/lifecycle   {"lifecycleEvent":"missed"|"subscriptionRemoved"|"reauthorizationRequired"} -> 202
//	POST   /_emulator/faults                         one of
//	         {"kind":"throttle","mailbox","count","retryAfterSeconds"}
//	         {"kind":"serverError","mailbox","count","status":500|503,"retryAfterSeconds"?}
//	         {"kind":"slow","mailbox","count","ms"}        (answered after ms; the call is made even if the caller gave up)
//	         {"kind":"dropConnection","mailbox","count"}   (cut before serving: no answer, nothing changed)
//	         (these four count the next calls to the mailbox; "method":"POST" etc. counts only calls with that method)
//	         {"kind":"dropNotifications","count","silent"?}  (silent: no "missed" lifecycle notification either)
//	         {"kind":"delayNotifications","ms","count"}
//	         {"kind":"failHandshake","count"}
//	         {"kind":"staleDeltaTokens","form"?}  ("" 410 syncStateNotFound; "gone" 410 + Location; "syncStateNotFound"/"resyncRequired" 400; "unknown" tokens forgotten)
//	         {"kind":"dropResponse","count"}       (the change is made, the answer is lost)
//	         {"kind":"replayDelta","count"}        (the next incremental delta rounds repeat the previous round's changes)
//	DELETE /_emulator/faults                         clear every fault
//	GET    /_emulator/requests?since=N               {"value":[{"seq","method","path","status","at","mailbox"}]} Graph and identity calls served (status 0: no answer, the connection was cut)
//	GET    /_emulator/state                          a dump of tenants, users, event counts and subscriptions
//	POST   /_emulator/reset                          forget everything
//
// Use it in-process with Start (a TLS server with its own CA) or run
// cmd/graphemu.
package graphemu
