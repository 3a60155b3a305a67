// Package subscriptions will own the Graph subscription lifecycle: create on
// link, the renewal timer, reauthorize, recreate and delete. See issue
// "ユーザー管理 → カレンダー連携". Nothing runs here yet.
package subscriptions
