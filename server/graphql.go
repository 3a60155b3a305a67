package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/internal/tracing"
)

// queryCache is the parsed-document cache the options ask for.
func (o Options) queryCache() *queryCache {
	if o.docCache != nil {
		return o.docCache
	}
	b := o.QueryCacheBytes
	if b <= 0 {
		b = 32 << 20
	}
	return newQueryCache(b, 1000)
}

func newGraphQL(o Options) http.Handler {
	srv := handler.New(o.Schema)
	srv.AddTransport(transport.Websocket{
		// Same-origin pages and non-browser clients are always allowed;
		// other browser origins only when listed (scheme://host).
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: websocket.AcceptOptions{OriginPatterns: o.AllowedOrigins},
		},
		InitTimeout:           10 * time.Second,
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      20 * time.Second,
		InitFunc:              wsInit(o.Verifier),
		CloseFunc: func(ctx context.Context, _ int) {
			if cancel, ok := ctx.Value(wsCancelKey{}).(context.CancelFunc); ok {
				cancel()
			}
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(specHTTP{transport.GET{}})
	srv.AddTransport(specHTTP{sizedPOST{Transport: transport.POST{}, limits: o.QueryLimits}})
	srv.AddTransport(safeMultipart{transport.MultipartForm{MaxUploadSize: o.MaxBodyBytes, MaxMemory: o.MaxBodyBytes}})
	cache := o.queryCache()
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(o.QueryLimits.Tokens)
	// Suggestions ("Did you mean …") name schema fields: only where the
	// schema is public anyway.
	srv.SetDisableSuggestion(!o.Introspection)
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	// Size and shape limits run before the persisted-query store and before
	// gqlgen parses, validates or caches the document.
	srv.Use(documentLimits{limits: o.QueryLimits})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(complexityLimit{limit: o.QueryLimits.Complexity, schema: o.Schema, cache: cache})
	if tracing.Enabled() {
		srv.AroundOperations(traceOperations)
	}
	srv.AroundResponses(capErrors(maxErrors))
	srv.AroundOperations(capSubscriptions(o.SubscriptionsPerConnection, o.SubscriptionsPerCaller, &callerCounts{n: map[string]int{}}))
	if o.MutationsPerSecond > 0 {
		srv.AroundOperations(rateLimit(newCompanyLimiter(o.MutationsPerSecond, max(o.MutationBurst, 1))))
	}
	srv.AroundFields(internalErrors(o.Logger))
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", slog.String("panic", fmt.Sprint(p)))
		return apperr.As(errors.New("panic"))
	})
	return srv
}

type wsCancelKey struct{}

// wsInit authenticates a websocket from its connection_init payload
// ({"Authorization": "Bearer <JWT>"}) and closes the socket when the token
// expires.
func wsInit(v *auth.Verifier) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		raw, _ := p["Authorization"].(string)
		if raw == "" {
			raw, _ = p["authorization"].(string)
		}
		tok, present := auth.BearerToken(raw)
		if !present {
			return ctx, nil, errors.New(auth.ErrNoToken.Message.In(apperr.LangFrom(ctx)))
		}
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return ctx, nil, errors.New(apperr.As(err).Message.In(apperr.LangFrom(ctx)))
		}
		ctx = auth.WithCaller(ctx, c)
		ctx = context.WithValue(ctx, wsConnKey{}, new(atomic.Int64))
		ctx, cancel := context.WithDeadline(ctx, c.ExpiresAt)
		return context.WithValue(ctx, wsCancelKey{}, cancel), nil, nil
	}
}

// internalErrors turns any error a resolver returns that is not a
// user-facing *apperr.Error into a logged INTERNAL error, so driver or SDK
// text never reaches a caller.
func internalErrors(log *slog.Logger) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		res, err := next(ctx)
		if err == nil {
			return res, nil
		}
		if isIntrospection(ctx) && err.Error() == "introspection disabled" {
			return res, ErrIntrospectionOff
		}
		var ae *apperr.Error
		if errors.As(err, &ae) {
			if ae.Code == apperr.Internal && ae.Cause != nil {
				log.ErrorContext(ctx, "internal error", slog.String("op", fieldPath(ctx)), slog.String("error", ae.Cause.Error()))
			}
			return res, err
		}
		log.ErrorContext(ctx, "internal error", slog.String("op", fieldPath(ctx)), slog.String("error", err.Error()))
		return res, apperr.As(err)
	}
}

// ErrIntrospectionOff answers __schema and __type where introspection is
// turned off (production default): a refusal, not a failure.
var ErrIntrospectionOff = apperr.New(apperr.Forbidden,
	"このサーバーではスキーマの問い合わせ (introspection) が無効です。",
	"Introspection is turned off on this server.").
	WithHint("開発環境では CALSYNC_INTROSPECTION=true で有効にできます。", "Set CALSYNC_INTROSPECTION=true to turn it on in development.")

func isIntrospection(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && fc.Field.Field != nil && (fc.Field.Name == "__schema" || fc.Field.Name == "__type")
}

func fieldPath(ctx context.Context) string {
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		return fc.Path().String()
	}
	return ""
}

// presentError renders every error with a stable extensions.code and a
// message in the caller's language.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	out := graphql.DefaultErrorPresenter(ctx, err)
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		// gqlgen's own errors: parse, validation, argument coercion.
		if out.Extensions == nil {
			out.Extensions = map[string]any{}
		}
		if _, ok := out.Extensions["code"]; !ok {
			out.Extensions["code"] = apperr.InvalidInput
			// The POST transport's decode error quotes the whole body.
			if strings.HasPrefix(out.Message, "json request body could not be decoded") || strings.HasPrefix(out.Message, "could not read request body") {
				out.Message = errMalformed.Message.In(apperr.LangFrom(ctx))
			}
		}
		return out
	}
	lang := apperr.LangFrom(ctx)
	out.Message = ae.Message.In(lang)
	out.Extensions = map[string]any{"code": ae.Code}
	for k, v := range ae.Extra {
		out.Extensions[k] = v
	}
	if ae.Field != "" {
		out.Extensions["field"] = ae.Field
	}
	if ae.Hint != nil {
		out.Extensions["hint"] = ae.Hint.In(lang)
	}
	return out
}
