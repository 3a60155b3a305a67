package outlook

// ReadsPlainly reports whether the fast event decoder reads raw itself
// (without falling back to kiota's parser).
func ReadsPlainly(raw []byte) bool {
	_, ok := fastEvent(raw)
	return ok
}
