package server

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"golang.org/x/time/rate"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

// companyLimiter caps each company's mutations, so one company cannot spend
// the Graph quota and the workers that others share.
type companyLimiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newCompanyLimiter(perSec float64, burst int) *companyLimiter {
	return &companyLimiter{perSec: rate.Limit(perSec), burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *companyLimiter) allow(company string) (bool, time.Duration) {
	l.mu.Lock()
	b := l.buckets[company]
	if b == nil {
		b = rate.NewLimiter(l.perSec, l.burst)
		l.buckets[company] = b
	}
	l.mu.Unlock()
	r := b.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// rateLimit refuses a company's mutations past its budget with THROTTLED.
func rateLimit(l *companyLimiter) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		op := graphql.GetOperationContext(ctx)
		if op.Operation == nil || op.Operation.Operation != ast.Mutation {
			return next(ctx)
		}
		c, err := auth.FromContext(ctx)
		if err != nil {
			return next(ctx) // unauthenticated: the resolvers refuse it
		}
		if ok, wait := l.allow(c.CompanyID); !ok {
			secs := int(wait.Seconds()) + 1
			e := apperr.New(apperr.Throttled, "操作が多すぎます。しばらくしてから再度お試しください。", "Too many operations for this company; retry shortly.").
				WithExtra("retryAfterSeconds", secs)
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, e)}})
		}
		return next(ctx)
	}
}
