package changes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// TestFeedRetention (issue 17 §4): changes older than the retention are
// pruned; a cursor from before what was pruned answers CURSOR_EXPIRED with
// the recovery recipe, a newer one goes on as before, a malformed one stays
// INVALID_INPUT; calendarChangesHead is the newest position; another
// company's feed is untouched.
func TestFeedRetention(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	feed := changes.NewFeed(e.Store, time.Hour, cursor.NewCodec([]byte("k")), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if head, err := feed.Head(ctx, co); err != nil || head != "" {
		t.Fatalf("head of an empty feed: %q %v", head, err)
	}
	var mine, theirs []db.Change
	for i := 0; i < 6; i++ {
		for _, company := range []string{co, "other-co"} {
			c := &db.Change{CompanyID: company, UserID: "u1", OutlookEventID: "ev", ChangeType: "CREATED", ChangedFields: []string{"subject"}}
			if err := e.Store.InsertChange(ctx, c); err != nil {
				t.Fatal(err)
			}
			if company == co {
				mine = append(mine, *c)
			} else {
				theirs = append(theirs, *c)
			}
		}
	}
	// The first three of each company are 40 days old.
	old := append(append([]db.Change{}, mine[:3]...), theirs[:3]...)
	for _, c := range old {
		if _, err := e.Store.DB().ExecContext(ctx, `UPDATE changes SET occurred_at = now() - interval '40 days' WHERE cursor = ?`, c.Cursor); err != nil {
			t.Fatal(err)
		}
	}
	w := changes.NewWorker(e.Store, e.Syncer, nil, time.Hour, e.Log)
	w.KeepChanges(changes.DefaultFeedRetention)
	if n, err := w.Prune(ctx); err != nil || n != 6 {
		t.Fatalf("pruned %d rows, want 6 (%v)", n, err)
	}

	_, err := feed.Page(ctx, co, feed.Cursor(mine[0]), 10, "")
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.CursorExpired || ae.Field != "after" || ae.Hint == nil {
		t.Fatalf("a cursor from before the pruned changes: %v", err)
	}
	// The newest pruned cursor is still a valid place to go on from.
	p, err := feed.Page(ctx, co, feed.Cursor(mine[2]), 10, "")
	if err != nil || len(p.Changes) != 3 || p.Changes[0].Cursor != feed.Cursor(mine[3]) {
		t.Fatalf("from the horizon: %+v %v", p, err)
	}
	if p, err := feed.Page(ctx, co, "", 10, ""); err != nil || len(p.Changes) != 3 {
		t.Fatalf("from the start: %+v %v", p, err)
	}
	if _, err := feed.Page(ctx, co, "bm90LWEtY3Vyc29y", 10, ""); apperr.CodeOf(err) != apperr.InvalidInput {
		t.Fatalf("a malformed cursor: %v", err)
	}
	head, err := feed.Head(ctx, co)
	if err != nil || head != feed.Cursor(mine[5]) {
		t.Fatalf("head %q, want the newest change's cursor (%v)", head, err)
	}
	if p, err := feed.Page(ctx, co, head, 10, ""); err != nil || len(p.Changes) != 0 {
		t.Fatalf("following from the head: %+v %v", p, err)
	}
	// Another company's cursors are judged by its own horizon.
	if p, err := feed.Page(ctx, "other-co", feed.Cursor(theirs[2]), 10, ""); err != nil || len(p.Changes) != 3 {
		t.Fatalf("the other company: %+v %v", p, err)
	}
}
