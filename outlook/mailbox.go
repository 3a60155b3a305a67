package outlook

import (
	"context"

	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// User is a directory user with a mailbox.
type User struct {
	ID          string
	Mail        string
	DisplayName string
}

// GetUser resolves an id, userPrincipalName or mail address. It needs the
// User.Read.All application permission; without it Graph answers 403
// (KindAccessDenied).
func (s *Session) GetUser(ctx context.Context, idOrMail string) (User, error) {
	u, err := s.usersRoot().ByUserId(idOrMail).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: []string{"id", "mail", "userPrincipalName", "displayName"}},
	})
	if err != nil {
		return User{}, classify("getting user", err)
	}
	out := User{ID: deref(u.GetId()), Mail: deref(u.GetMail()), DisplayName: deref(u.GetDisplayName())}
	if out.Mail == "" {
		out.Mail = deref(u.GetUserPrincipalName())
	}
	return out, nil
}

// CalendarOwner reads the mailbox's default calendar, which needs only the
// calendar permission: it proves the app can reach the mailbox (404 for no
// such mailbox, 403 when consent or an application access policy blocks it).
func (s *Session) CalendarOwner(ctx context.Context, idOrMail string) (User, error) {
	c, err := s.usersRoot().ByUserId(idOrMail).Calendar().Get(ctx, nil)
	if err != nil {
		return User{}, classify("getting calendar", err)
	}
	var out User
	if o := c.GetOwner(); o != nil {
		out.Mail, out.DisplayName = deref(o.GetAddress()), deref(o.GetName())
	}
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
