package server

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

// wsConnKey holds the number of live subscriptions of one websocket.
type wsConnKey struct{}

// callerCounts counts live subscriptions per caller on this replica. An
// entry is freed when its count returns to zero.
type callerCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *callerCounts) acquire(key string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit > 0 && c.n[key] >= limit {
		return false
	}
	c.n[key]++
	return true
}

func (c *callerCounts) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// capSubscriptions refuses a websocket subscribe past perConn live
// subscriptions on its connection or perCaller for its caller, with the
// graphql-transport-ws error message for that id; each ends its count when
// the subscription ends.
func capSubscriptions(perConn, perCaller int, counts *callerCounts) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		oc := graphql.GetOperationContext(ctx)
		conn, _ := ctx.Value(wsConnKey{}).(*atomic.Int64)
		if conn == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
			return next(ctx)
		}
		if n := conn.Add(1); perConn > 0 && n > int64(perConn) {
			conn.Add(-1)
			return refuseSubscription(ctx, "connection", perConn)
		}
		c, _ := auth.FromContext(ctx)
		key := c.CompanyID + "\x00" + c.UserID
		if !counts.acquire(key, perCaller) {
			conn.Add(-1)
			return refuseSubscription(ctx, "caller", perCaller)
		}
		context.AfterFunc(ctx, func() {
			conn.Add(-1)
			counts.release(key)
		})
		return next(ctx)
	}
}

func refuseSubscription(ctx context.Context, scope string, limit int) graphql.ResponseHandler {
	ja := map[string]string{"connection": "この接続", "caller": "このユーザー"}[scope]
	e := apperr.New(apperr.QueryTooComplex,
		ja+"の購読 (subscription) が上限 "+strconv.Itoa(limit)+" 件に達しています。",
		"Too many live subscriptions for this "+scope+" (limit "+strconv.Itoa(limit)+").").
		WithExtra("limit", "subscriptions_per_"+scope).WithExtra("max", limit).
		WithHint("使わなくなった購読を complete してから購読してください。", "Complete subscriptions you no longer need first.")
	transport.AddSubscriptionError(ctx, presentError(ctx, e))
	return func(context.Context) *graphql.Response { return nil }
}
