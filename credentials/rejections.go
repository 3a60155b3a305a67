package credentials

import (
	"errors"
	"strings"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/outlook"
)

var errSwapped = apperr.New(apperr.AuthFileInvalid,
	"tenant_id と client_id が入れ替わっているようです。2つの値を入れ替えて登録し直してください。",
	"tenant_id and client_id appear to be swapped; exchange the two values and register again.").
	WithField(authfile.FieldTenantID).
	WithHint("アプリの「概要」で「ディレクトリ (テナント) ID」を tenant_id に、「アプリケーション (クライアント) ID」を client_id に指定します。",
		"On the app's Overview page, the Directory (tenant) ID goes in tenant_id and the Application (client) ID in client_id.")

func consentMissing(roles []string) *apperr.Error {
	granted := "なし"
	if len(roles) > 0 {
		granted = strings.Join(roles, ", ")
	}
	return apperr.New(apperr.ConsentMissing,
		"アプリに Calendars.ReadWrite（アプリケーションの許可）が付与されていません（現在: "+granted+"）。",
		"The app has not been granted the Calendars.ReadWrite application permission (granted: "+strings.ReplaceAll(granted, "なし", "none")+").").
		WithField(authfile.FieldClientID).
		WithExtra("status", string(StatusConsentMissing)).
		WithHint("Entra ID 管理センターの「API のアクセス許可」で Microsoft Graph の Calendars.ReadWrite（アプリケーションの許可）を追加し、「管理者の同意を与えます」を押してください。",
			"In the Entra admin center, under API permissions, add Microsoft Graph Calendars.ReadWrite (Application) and press \"Grant admin consent\".")
}

// rejection maps a verification failure to a status and the caller's error.
func rejection(err error) (Status, *apperr.Error) {
	var oe *outlook.Error
	code := ""
	if errors.As(err, &oe) {
		code = oe.Code
	}
	reject := func(status Status, field, ja, en, hintJA, hintEN string) (Status, *apperr.Error) {
		e := apperr.New(apperr.CredentialsRejected, ja, en).WithExtra("status", string(status)).WithHint(hintJA, hintEN)
		if field != "" {
			e = e.WithField(field)
		}
		if code != "" {
			e = e.WithExtra("microsoftCode", code)
		}
		return status, e.Wrap(err)
	}
	switch outlook.KindOf(err) {
	case outlook.KindNoPermissions:
		return StatusConsentMissing, consentMissing(nil).Wrap(err)
	case outlook.KindInvalidSecret:
		return reject(StatusInvalidSecret, authfile.FieldClientSecret,
			"クライアントシークレットが正しくありません。", "The client secret is not valid.",
			"シークレットの「値」を指定しているか確認してください（「シークレット ID」ではありません）。値が分からない場合は新しいシークレットを作成してください。",
			"Check that client_secret holds the secret's Value, not its Secret ID. If the value is lost, create a new secret.")
	case outlook.KindSecretExpired:
		return reject(StatusSecretExpired, authfile.FieldClientSecret,
			"クライアントシークレットの有効期限が切れています。", "The client secret has expired.",
			"「証明書とシークレット」で新しいクライアントシークレットを作成し、authOfficeCalendar.json を更新して再登録してください。",
			"Create a new client secret under Certificates & secrets, update authOfficeCalendar.json and register it again.")
	case outlook.KindTenantNotFound:
		return reject(StatusTenantNotFound, authfile.FieldTenantID,
			"テナントが見つかりません。", "The tenant was not found.",
			"tenant_id に「ディレクトリ (テナント) ID」が正しく指定されているか確認してください。",
			"Check that tenant_id holds the Directory (tenant) ID.")
	case outlook.KindAppNotFound:
		return reject(StatusAppNotFound, authfile.FieldClientID,
			"テナント内にアプリが見つかりません。", "The app was not found in the tenant.",
			"client_id に「アプリケーション (クライアント) ID」が正しく指定されているか、アプリが同じテナントに登録されているか確認してください。",
			"Check that client_id holds the Application (client) ID of an app registered in that tenant.")
	case outlook.KindUnreachable:
		return reject(StatusUnreachable, "",
			"Microsoft の認証サーバーに接続できませんでした。", "Microsoft's sign-in service could not be reached.",
			"しばらくしてから再度お試しください。続く場合はネットワーク設定を確認してください。",
			"Try again later; if it persists, check the network.")
	default:
		return reject(StatusInvalidSecret, authfile.FieldClientSecret,
			"Microsoft が認証情報を拒否しました。", "Microsoft rejected the credentials.",
			"アプリの登録とクライアントシークレットを確認してください。",
			"Check the app registration and its client secret.")
	}
}
