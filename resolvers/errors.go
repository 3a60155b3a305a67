package resolvers

import (
	"github.com/tehaishokunin/calsync/auth"
)

// feedUser narrows a member to their own changes.
func feedUser(caller auth.Caller, userID *string) (string, error) {
	u := ""
	if userID != nil {
		u = *userID
	}
	if caller.Has(auth.Service, auth.SystemAdmin, auth.UserAdmin) {
		return u, nil
	}
	if u != "" && u != caller.UserID {
		return "", auth.ErrForbidden
	}
	return caller.UserID, nil
}
