package resolvers

import (
	"context"
	"errors"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/authfile"
)

// adminUpload is a system admin's uploaded auth file (the caller, then the
// file's bytes).
func adminUpload(ctx context.Context, f graphql.Upload) (auth.Caller, []byte, error) {
	caller := callerOf(ctx)
	data, err := readUpload(f)
	return caller, data, err
}

// readUpload reads an uploaded auth file, at most one byte past the limit so
// the parser can say it is too large.
func readUpload(f graphql.Upload) ([]byte, error) {
	if f.File == nil {
		return nil, apperr.New(apperr.AuthFileInvalid, "ファイルが選択されていません。", "No file was uploaded.").WithField("file")
	}
	b, err := io.ReadAll(io.LimitReader(f.File, authfile.MaxSize+1))
	if err != nil {
		return nil, apperr.New(apperr.AuthFileInvalid, "ファイルを読み取れませんでした。", "The file could not be read.").WithField("file").Wrap(err)
	}
	return b, nil
}

// inputFields maps the file's field names to setCalendarAuth's input.
var inputFields = map[string]string{
	authfile.FieldTenantID:        "input.tenantId",
	authfile.FieldClientID:        "input.clientId",
	authfile.FieldClientSecret:    "input.clientSecret",
	authfile.FieldSecretExpiresAt: "input.clientSecretExpiresAt",
}

// asInputError renames the field of a validation error for the form input.
func asInputError(err error) error {
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Field != "" {
		if f, ok := inputFields[ae.Field]; ok {
			return ae.WithField(f)
		}
	}
	return err
}
