package resolvers

import "github.com/tehaishokunin/calsync/apperr"

// notImplemented answers operations whose issue has not landed yet, with a
// stable code so the host can tell "not yet" from "failed".
func notImplemented(op string) error {
	return apperr.New(apperr.NotImplemented,
		"この操作（"+op+"）はまだ実装されていません。",
		"The operation "+op+" is not implemented yet.").WithExtra("operation", op)
}
