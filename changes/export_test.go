package changes

// WakeForTest wakes a company's streams as a NOTIFY would.
func (f *Feed) WakeForTest(companyID string) { f.wake(companyID) }
