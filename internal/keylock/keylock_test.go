package keylock

import (
	"fmt"
	"sync"
	"testing"
)

func TestLockSerialisesAndFrees(t *testing.T) {
	var m Map
	counter := map[string]*int{}
	for j := 0; j < 4; j++ {
		counter[fmt.Sprint("k", j)] = new(int)
	}
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				key := fmt.Sprint("k", j%4)
				unlock := m.Lock(key)
				*counter[key]++ // the race detector fails this if keys do not serialise
				unlock()
			}
		}()
	}
	wg.Wait()
	for k, n := range counter {
		if *n != 64*25 {
			t.Errorf("%s: %d", k, *n)
		}
	}
	// 10,000 distinct keys, as hostile bulk calls send: nothing stays.
	for i := 0; i < 10000; i++ {
		m.Lock(fmt.Sprint("random-", i))()
	}
	if n := m.Len(); n != 0 {
		t.Errorf("%d keys kept after every holder left", n)
	}
}
