package resolvers

import (
	"github.com/tehaishokunin/calsync/auth"
)

// feedUser is whose changes the caller follows: the user asked for ("" for
// everyone), and a member (whom @hasRole lets ask only for themself) their
// own whether asked or not.
func feedUser(caller auth.Caller, userID *string) string {
	if !caller.Has(auth.Service, auth.SystemAdmin, auth.UserAdmin) {
		return caller.UserID
	}
	if userID == nil {
		return ""
	}
	return *userID
}
