package server

import (
	"container/list"
	"context"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
)

// astBytesPerQueryByte is how much heap a parsed and validated document
// takes per byte of its text, measured (TestQueryCacheCostEstimate) on
// documents of many tiny fields, the worst case: positions, names and
// selection slices for every token.
const astBytesPerQueryByte = 48

// queryCache is the parsed-document cache, an LRU bounded by the estimated
// heap its documents hold as well as by entries, so many large distinct
// documents cannot grow the heap without bound (gqlgen's lru bounds entries
// only).
type queryCache struct {
	mu         sync.Mutex
	maxBytes   int
	maxEntries int
	bytes      int
	order      *list.List // front: most recently used
	items      map[string]*list.Element
}

type cacheEntry struct {
	key  string
	doc  *ast.QueryDocument
	cost int
}

func newQueryCache(maxBytes, maxEntries int) *queryCache {
	return &queryCache{maxBytes: maxBytes, maxEntries: maxEntries, order: list.New(), items: map[string]*list.Element{}}
}

func docCost(query string) int { return len(query)*astBytesPerQueryByte + 256 }

// Get returns a cached document.
func (c *queryCache) Get(_ context.Context, key string) (*ast.QueryDocument, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cacheEntry).doc, true
	}
	return nil, false
}

// Add keeps a validated document, evicting the least recently used ones
// until both bounds hold. A document too large for the whole budget is not
// kept at all.
func (c *queryCache) Add(_ context.Context, key string, doc *ast.QueryDocument) {
	cost := docCost(key)
	if cost > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, doc: doc, cost: cost})
	c.bytes += cost
	for c.bytes > c.maxBytes || c.order.Len() > c.maxEntries {
		c.removeElement(c.order.Back())
	}
}

// Remove forgets a document (one the limits refused after validation).
func (c *queryCache) Remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.removeElement(e)
	}
}

func (c *queryCache) removeElement(e *list.Element) {
	ent := e.Value.(*cacheEntry)
	c.order.Remove(e)
	delete(c.items, ent.key)
	c.bytes -= ent.cost
}

// stats reports the entries and estimated bytes held, for tests and metrics.
func (c *queryCache) stats() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}
