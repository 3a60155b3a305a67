package resolvers

import (
	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

// notImplemented answers operations whose issue has not landed yet, with a
// stable code so the host can tell "not yet" from "failed".
func notImplemented(op string) error {
	return apperr.New(apperr.NotImplemented,
		"この操作（"+op+"）はまだ実装されていません。",
		"The operation "+op+" is not implemented yet.").WithExtra("operation", op)
}

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
