package cause

// StaleMaxAfterWrite is the classifier's window for a close that crossed
// the request on the wire.
const StaleMaxAfterWrite = staleMaxAfterWrite
