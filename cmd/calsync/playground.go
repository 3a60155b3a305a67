package main

import (
	"encoding/json"
	"time"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/config"
	"github.com/tehaishokunin/calsync/server"
)

// playgroundConfig opens the Playground on the whole story, in order. With
// the in-process emulator the examples carry the demo tenant's values and
// a ready development token; otherwise placeholders.
func playgroundConfig(cfg config.Config, g *graphSetup) server.PlaygroundConfig {
	tenant, client, secret, mailbox := "<tenant id>", "<client id>", "<client secret value>", "<mailbox address>"
	emuURL := "<emulator URL>"
	var headers map[string]string
	if g.emulator != nil {
		tenant, client, secret, mailbox, emuURL = demoTenantID, demoClientID, demoSecret, demoUsers[0].Mail, g.emulator.URL
		if len(cfg.JWTSecret) > 0 {
			tok, err := auth.Sign(cfg.JWTSecret, auth.Caller{UserID: "demo-admin", CompanyID: "demo-company",
				Roles: []auth.Role{auth.SystemAdmin, auth.UserAdmin, auth.Service}}, 12*time.Hour, time.Now())
			if err == nil {
				headers = map[string]string{"Authorization": "Bearer " + tok}
			}
		}
	}
	vars := func(v map[string]any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}
	return server.PlaygroundConfig{Headers: headers, Tabs: []server.PlaygroundTab{
		{Title: "1. カレンダー認証設定", Query: `# 1. 企業設定 → カレンダー認証設定
# authOfficeCalendar.json の3つの値を登録します（ファイルのアップロードは
# uploadCalendarAuthFile / curl -F、README 参照）。Microsoft で確認できた場合だけ保存されます。
mutation RegisterCredentials($input: CalendarAuthInput!) {
  setCalendarAuth(input: $input) {
    status
    tenantId
    clientId
    clientSecretHint
    grantedPermissions
    verifiedAt
  }
}`, Variables: vars(map[string]any{"input": map[string]any{"tenantId": tenant, "clientId": client, "clientSecret": secret}})},
		{Title: "2. ユーザーを連携", Query: `# 2. ユーザー管理 → カレンダー連携 = Office365 Outlook、カレンダーID = メールアドレス
mutation LinkUser($userId: ID!, $input: UserCalendarInput!) {
  setUserCalendar(userId: $userId, input: $input) {
    userId
    provider
    calendarId
    status
    subscriptionExpiresAt
    lastSyncedAt
  }
}`, Variables: vars(map[string]any{"userId": "craftsman-1", "input": map[string]any{"provider": "OFFICE365_OUTLOOK", "calendarId": mailbox}})},
		{Title: "3. 予定を登録", Query: `# 3. 手配の予定を Outlook に登録（externalId で何度送っても1件）
mutation PushEntry($userId: ID!, $input: CalendarEventInput!) {
  upsertCalendarEvent(userId: $userId, input: $input) {
    externalId
    outlookEventId
    subject
    start
    end
    timeZone
    version
    webLink
  }
}`, Variables: vars(map[string]any{"userId": "craftsman-1", "input": map[string]any{
			"externalId": "job-1001", "subject": "現場A 設備点検", "location": "東京都港区芝公園4-2-8",
			"start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T12:00:00+09:00", "timeZone": "Asia/Tokyo", "body": "脚立を持参"}})},
		{Title: "4. 変更を購読", Query: `# 4. Outlook 側の変更を購読します（実行したままにしてください）。
# 別のターミナルで Outlook 側の編集をエミュレーターに送ると通知が届きます:
#   curl -k -X POST ` + emuURL + `/_emulator/users/` + mailbox + `/events \
#     -d '{"subject":"歯医者","start":{"dateTime":"2026-12-02T10:00:00","timeZone":"Tokyo Standard Time"},"end":{"dateTime":"2026-12-02T11:00:00","timeZone":"Tokyo Standard Time"}}'
subscription Changes {
  calendarChanged {
    cursor
    userId
    externalId
    changeType
    changedFields
    event {
      subject
      start
      end
    }
  }
}`},
		{Title: "5. 変更を取得", Query: `# 5. 変更フィードを取得（切断後はここから追いつけます）
query Feed($after: String) {
  calendarChanges(after: $after, first: 50) {
    edges {
      node {
        cursor
        userId
        externalId
        changeType
        changedFields
        occurredAt
        event {
          subject
          start
          end
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}`},
	}}
}
