package outlook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Kind is the small set of failures callers switch on.
type Kind string

// The kinds of failure calsync distinguishes.
const (
	// Identity (token endpoint) failures.
	KindInvalidSecret  Kind = "invalid_secret"   // AADSTS7000215
	KindSecretExpired  Kind = "secret_expired"   // AADSTS7000222
	KindTenantNotFound Kind = "tenant_not_found" // AADSTS90002
	KindAppNotFound    Kind = "app_not_found"    // AADSTS700016
	KindAuthFailed     Kind = "auth_failed"      // any other AADSTS error
	KindUnreachable    Kind = "unreachable"      // network, TLS, DNS, timeout

	// Graph failures.
	KindUnauthorized Kind = "unauthorized"  // 401
	KindAccessDenied Kind = "access_denied" // 403: consent or application access policy
	// KindNoPermissions: 401 NoPermissionsInAccessToken, the app's token
	// carries no application permission at all (no admin consent).
	KindNoPermissions Kind = "no_permissions"
	KindNotFound      Kind = "not_found" // 404
	// KindMailboxNotEnabled: the user has no Exchange Online mailbox
	// Graph can reach (no Exchange licence, a guest, on-premises): 404
	// MailboxNotEnabledForRESTAPI.
	KindMailboxNotEnabled Kind = "mailbox_not_enabled"
	// KindMailboxNotReady: the user exists but the mailbox does not yet
	// (still being provisioned): 404 ResourceNotFound.
	KindMailboxNotReady Kind = "mailbox_not_ready"
	KindConflict        Kind = "conflict" // 409, 412: changeKey mismatch
	// KindDuplicateTransaction: a create's transactionId was already used
	// with another body (400 ErrorDuplicateTransactionId): the event exists.
	KindDuplicateTransaction Kind = "duplicate_transaction"
	KindSyncReset            Kind = "sync_reset"  // 410 / syncStateNotFound: start delta over
	KindThrottled            Kind = "throttled"   // 429 after the SDK's own retries
	KindBadRequest           Kind = "bad_request" // 400
	KindUnavailable          Kind = "unavailable" // 5xx
	KindUnknown              Kind = "unknown"
)

// Error is a classified failure of a Microsoft call. Message is Microsoft's
// own text (it never contains the client secret); Code is the Graph error
// code or "AADSTS<n>".
type Error struct {
	Kind       Kind
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	Op         string
	Err        error
}

func (e *Error) Error() string {
	s := e.Op + ": " + string(e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (%d", e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	} else if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err, KindUnknown when it is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

var aadstsCode = regexp.MustCompile(`AADSTS(\d+)`)

// classifyIdentity turns an azidentity failure into an *Error.
func classifyIdentity(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := &Error{Op: op, Err: err}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		out.Status = afe.RawResponse.StatusCode
	}
	if m := aadstsCode.FindStringSubmatch(msg); m != nil {
		out.Code = "AADSTS" + m[1]
		out.Message = aadstsDescription(msg, m[0])
		switch m[1] {
		case "7000215":
			out.Kind = KindInvalidSecret
		case "7000222":
			out.Kind = KindSecretExpired
		case "90002":
			out.Kind = KindTenantNotFound
		case "700016":
			out.Kind = KindAppNotFound
		default:
			out.Kind = KindAuthFailed
		}
		return out
	}
	if isNetwork(err) {
		out.Kind = KindUnreachable
		out.Message = "the identity endpoint could not be reached"
		return out
	}
	out.Kind = KindAuthFailed
	return out
}

// aadstsDescription extracts Entra ID's one-line description.
func aadstsDescription(msg, code string) string {
	i := strings.Index(msg, code)
	s := msg[i:]
	for _, stop := range []string{" Trace ID:", "\\r\\n", "\r\n", "\",", "\n"} {
		if j := strings.Index(s, stop); j > 0 {
			s = s[:j]
		}
	}
	return s
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	var dnsErr *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &dnsErr) || errors.As(err, &ne) ||
		(errors.As(err, &ue) && !strings.Contains(ue.Error(), "AADSTS")) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// azidentity flattens transport errors into its message.
	msg := err.Error()
	for _, s := range networkSigns {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

var networkSigns = []string{"dial tcp", "connection refused", "connection reset", "no such host", "i/o timeout",
	"TLS handshake", "certificate", "context deadline exceeded", "EOF", "network is unreachable"}

// classify turns a Graph call failure into an *Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	out := &Error{Op: op, Err: err, Kind: KindUnknown}
	var oe *odataerrors.ODataError
	var ae *abstractions.ApiError
	switch {
	case errors.As(err, &oe):
		out.Status = oe.ResponseStatusCode
		if main := oe.GetErrorEscaped(); main != nil {
			if c := main.GetCode(); c != nil {
				out.Code = *c
			}
			if m := main.GetMessage(); m != nil {
				out.Message = *m
			}
		}
		out.RetryAfter = retryAfter(oe.ResponseHeaders)
	case errors.As(err, &ae):
		out.Status = ae.ResponseStatusCode
		out.Message = ae.Message
		out.RetryAfter = retryAfter(ae.ResponseHeaders)
	default:
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) || aadstsCode.MatchString(err.Error()) {
			return classifyIdentity(op, err)
		}
		if isNetwork(err) {
			out.Kind = KindUnreachable
			out.Message = "Microsoft Graph could not be reached"
		}
		return out
	}
	out.Kind = graphKind(out.Status, out.Code, out.Message)
	return out
}

// graphKind classifies a Graph answer by its status, error code and (where
// the code alone is ambiguous) message, for a direct call and a $batch
// step alike.
func graphKind(status int, code, message string) Kind {
	switch {
	case strings.EqualFold(code, "NoPermissionsInAccessToken"):
		return KindNoPermissions
	case strings.EqualFold(code, "ErrorDuplicateTransactionId"):
		return KindDuplicateTransaction
	case strings.EqualFold(code, "MailboxNotEnabledForRESTAPI") || strings.EqualFold(code, "MailboxNotSupportedForRESTAPI"):
		return KindMailboxNotEnabled
	case status == 404 && strings.EqualFold(code, "ResourceNotFound") && strings.Contains(strings.ToLower(message), "could not be discovered"):
		// "Resource could not be discovered": a mailbox that does not
		// exist (yet). The same code with "The object was not found." is
		// an ordinary missing object, such as a subscription.
		return KindMailboxNotReady
	case status == 410 || strings.EqualFold(code, "syncStateNotFound") || strings.EqualFold(code, "resyncRequired"):
		return KindSyncReset
	case status == 401:
		return KindUnauthorized
	case status == 403:
		return KindAccessDenied
	case status == 404:
		return KindNotFound
	case status == 409 || status == 412:
		return KindConflict
	case status == 429:
		return KindThrottled
	case status == 400:
		return KindBadRequest
	case status >= 500:
		return KindUnavailable
	}
	return KindUnknown
}

func retryAfter(h *abstractions.ResponseHeaders) time.Duration {
	if h == nil {
		return 0
	}
	for _, k := range []string{"Retry-After", "retry-after"} {
		if v := h.Get(k); len(v) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}
