// Package attackdoc builds the hostile GraphQL documents of the
// hostile-input findings, so the tests that bound them and the benchmark
// that prices them send the same attacks.
package attackdoc

import (
	"fmt"
	"strings"
)

// FanOut is a ~1 KB document whose levels fragments each spread the next
// one twice: its operation expands to 2^levels fields.
func FanOut(levels int) string {
	var b strings.Builder
	b.WriteString("query { ...F0 }\n")
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { __typename }\n", levels)
	return b.String()
}

// Chain is a linear chain of n fragments, each one field and one spread.
func Chain(n int) string {
	var b strings.Builder
	b.WriteString("query { ...C0 }\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment C%d on Query { __typename ...C%d }\n", i, i+1)
	}
	fmt.Fprintf(&b, "fragment C%d on Query { __typename }\n", n)
	return b.String()
}

// TinyOps is a document of tiny operations (q<seed>_0, q<seed>_1, …) of
// at least minBytes, distinct per seed.
func TinyOps(seed, minBytes int) string {
	var b strings.Builder
	for i := 0; b.Len() < minBytes; i++ {
		fmt.Fprintf(&b, "query q%d_%d { __typename }\n", seed, i)
	}
	return b.String()
}
