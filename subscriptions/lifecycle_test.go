package subscriptions_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/subscriptions"
)

// hammer delivers one lifecycle event n times, par at once, as duplicated
// deliveries or a replay with a leaked clientState would.
func hammer(t *testing.T, b *bundle, subID, event string, n, par int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := b.mgr.HandleLifecycle(context.Background(), subID, event); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%s: %v", event, err)
	}
}

func (b *bundle) countPaths(since int64, method, contains string) int {
	n := 0
	for _, r := range b.emu.Requests(since) {
		if r.Method == method && strings.Contains(r.Path, contains) {
			n++
		}
	}
	return n
}

func TestDuplicateLifecycleNotificationsFold(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "5. duplicate lifecycle notifications", "200 each of reauthorizationRequired, missed and subscriptionRemoved for one subscription, 8 at once",
		"1 PATCH; the delta reads of one round (≤ 2); exactly one new subscription, the superseded one deleted in Graph and calsync, one live subscription for the link")
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]

	// 200 reauthorizationRequired, 8 at once: one PATCH.
	since := b.emu.LastRequestSeq()
	hammer(t, b, sub.ID, subscriptions.EventReauthorizationRequired, 200, 8)
	if n := b.countPatches(since); n != 1 {
		t.Errorf("200 reauthorizationRequired made %d PATCHes, want 1", n)
	}

	// 200 missed: as many delta reads as one missed makes.
	since = b.emu.LastRequestSeq()
	hammer(t, b, sub.ID, subscriptions.EventMissed, 200, 8)
	if n := b.countPaths(since, "GET", "/delta"); n == 0 || n > 2 {
		t.Errorf("200 missed made %d delta reads", n)
	}

	// 200 subscriptionRemoved: one new subscription, the old one gone, in
	// calsync and in Graph.
	since = b.emu.LastRequestSeq()
	hammer(t, b, sub.ID, subscriptions.EventSubscriptionRemoved, 200, 8)
	now := b.subsOf(t, l.ID)
	if len(now) != 1 || now[0].ID == sub.ID {
		t.Fatalf("after 200 subscriptionRemoved: %d subscriptions %+v", len(now), now)
	}
	live := b.emuSubs(t)
	if _, ok := live[sub.ID]; ok {
		t.Error("the superseded subscription is still live in Graph")
	}
	if len(live) != 1 {
		t.Errorf("%d live subscriptions in Graph for one link", len(live))
	}
	if n := b.countPaths(since, "POST", "/v1.0/subscriptions"); n != 1 {
		t.Errorf("%d subscriptions created", n)
	}
}

func TestFailedLifecycleActionIsRetried(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "5. folding never loses an event", "reauthorizationRequired while Graph throttles for an hour, then the inbox's retry",
		"the retry acts (1 PATCH): a failed attempt releases its claim")
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]
	// Throttled for an hour: calsync answers THROTTLED at once.
	if err := b.emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: b.mailbox, Count: 1, RetryAfterSeconds: 3600, Method: "PATCH"}); err != nil {
		t.Fatal(err)
	}
	if err := b.mgr.HandleLifecycle(context.Background(), sub.ID, subscriptions.EventReauthorizationRequired); err == nil {
		t.Fatal("a throttled renewal succeeded")
	}
	// The inbox retries a failed item: the retry must act, not fold.
	since := b.emu.LastRequestSeq()
	if err := b.mgr.HandleLifecycle(context.Background(), sub.ID, subscriptions.EventReauthorizationRequired); err != nil {
		t.Fatal(err)
	}
	if n := b.countPatches(since); n != 1 {
		t.Errorf("retry after a failure made %d PATCHes, want 1", n)
	}
}
