package outlook

import (
	"context"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/subscriptions"
)

// MaxEventSubscription is the longest an Outlook event subscription may
// live (10,080 minutes).
const MaxEventSubscription = 10080 * time.Minute

// SubscriptionRequest describes a subscription to create.
type SubscriptionRequest struct {
	Resource        string // e.g. /users/{id}/events
	ChangeTypes     []string
	NotificationURL string
	LifecycleURL    string
	ClientState     string
	Expiration      time.Time
}

// Subscription is a live Graph subscription.
type Subscription struct {
	ID         string
	Resource   string
	Expiration time.Time
}

func subscriptionFrom(m models.Subscriptionable) Subscription {
	s := Subscription{ID: deref(m.GetId()), Resource: deref(m.GetResource())}
	if t := m.GetExpirationDateTime(); t != nil {
		s.Expiration = t.UTC()
	}
	return s
}

// CreateSubscription creates a subscription; Graph first runs the
// validation handshake against the notification (and lifecycle) URL.
func (s *Session) CreateSubscription(ctx context.Context, req SubscriptionRequest) (Subscription, error) {
	m := models.NewSubscription()
	m.SetResource(ptr(req.Resource))
	m.SetChangeType(ptr(strings.Join(req.ChangeTypes, ",")))
	m.SetNotificationUrl(ptr(req.NotificationURL))
	if req.LifecycleURL != "" {
		m.SetLifecycleNotificationUrl(ptr(req.LifecycleURL))
	}
	m.SetClientState(ptr(req.ClientState))
	m.SetExpirationDateTime(ptr(req.Expiration.UTC()))
	m.SetLatestSupportedTlsVersion(ptr("v1_2"))
	res, err := s.subscriptionsRoot().Post(ctx, m, &subscriptions.SubscriptionsRequestBuilderPostRequestConfiguration{Headers: headers()})
	if err != nil {
		return Subscription{}, classify("creating subscription", err)
	}
	return subscriptionFrom(res), nil
}

// RenewSubscription moves a subscription's expiration.
func (s *Session) RenewSubscription(ctx context.Context, id string, expiration time.Time) (Subscription, error) {
	m := models.NewSubscription()
	m.SetExpirationDateTime(ptr(expiration.UTC()))
	res, err := s.subscriptionsRoot().BySubscriptionId(id).Patch(ctx, m, nil)
	if err != nil {
		return Subscription{}, classify("renewing subscription", err)
	}
	return subscriptionFrom(res), nil
}

// ReauthorizeSubscription answers a reauthorizationRequired lifecycle
// notification.
func (s *Session) ReauthorizeSubscription(ctx context.Context, id string) error {
	return classify("reauthorizing subscription", s.subscriptionsRoot().BySubscriptionId(id).Reauthorize().Post(ctx, nil))
}

// DeleteSubscription deletes a subscription (KindNotFound when already
// gone).
func (s *Session) DeleteSubscription(ctx context.Context, id string) error {
	return classify("deleting subscription", s.subscriptionsRoot().BySubscriptionId(id).Delete(ctx, nil))
}

// GetSubscription reads a subscription (KindNotFound when Graph no longer
// has it).
func (s *Session) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	res, err := s.subscriptionsRoot().BySubscriptionId(id).Get(ctx, nil)
	if err != nil {
		return Subscription{}, classify("getting subscription", err)
	}
	return subscriptionFrom(res), nil
}
