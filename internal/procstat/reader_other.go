//go:build !linux

package procstat

// NewReader returns a reader that reports ErrUnsupported.
func NewReader() Reader { return unsupported{} }

type unsupported struct{}

func (unsupported) Read([]int) (map[int]Stats, error) { return nil, ErrUnsupported }
