package resolvers

import (
	"time"

	"github.com/tehaishokunin/calsync/graph"
	"github.com/tehaishokunin/calsync/graph/model"
)

// Default page sizes, as the services apply them when first is absent.
const (
	defaultLinksPage   = 50
	defaultChangesPage = 100
	defaultEventsPage  = 50
)

// Complexity prices list fields by the size they ask for, so the cost limit
// sees a page of 500 changes as 500 nodes, not one.
func Complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	c.Query.UserCalendarLinks = func(child int, first *int, _ *string, _ *model.LinkStatus) int {
		return 1 + child*pageSize(first, defaultLinksPage)
	}
	c.Query.CalendarChanges = func(child int, _ *string, first *int, _ *string) int {
		return 1 + child*pageSize(first, defaultChangesPage)
	}
	c.Query.CalendarEvents = func(child int, _ string, _, _ time.Time, first *int, _ *string) int {
		return 1 + child*pageSize(first, defaultEventsPage)
	}
	c.Query.CalendarAvailability = func(child int, userIDs []string, _, _ time.Time) int {
		return 1 + child*max(len(userIDs), 1)
	}
	c.Mutation.SetUserCalendars = func(child int, inputs []*model.UserCalendarBulkInput) int {
		return 1 + child*max(len(inputs), 1)
	}
	c.Mutation.UpsertCalendarEvents = func(child int, _ string, inputs []*model.CalendarEventInput) int {
		return 1 + child*max(len(inputs), 1)
	}
	return c
}

// pageSize is first, or the default when absent; out-of-range values are
// priced as asked and then refused by the service.
func pageSize(first *int, def int) int {
	if first == nil || *first == 0 {
		return def
	}
	return max(*first, 1)
}
