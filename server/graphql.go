package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

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
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: o.MaxBodyBytes, MaxMemory: o.MaxBodyBytes})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(queryLimits{limits: o.QueryLimits, schema: o.Schema})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
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
