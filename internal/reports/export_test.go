package reports

// SetSearchWalkFactor sets how searchHosts chooses between reading every
// match and walking the hosts in name order, and returns a function that
// restores it: 0 always walks (from chunks of one host), a huge factor
// never does.
func SetSearchWalkFactor(f int64) (restore func()) {
	old, oldChunk := searchWalkFactor, searchFirstChunk
	searchWalkFactor, searchFirstChunk = f, 1
	return func() { searchWalkFactor, searchFirstChunk = old, oldChunk }
}
