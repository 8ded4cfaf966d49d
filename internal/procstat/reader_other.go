//go:build !linux

package procstat

// NewReader returns a reader that reports ErrUnsupported.
func NewReader() Reader { return unsupported{} }

type unsupported struct{}

func (unsupported) Read([]int) (map[int]Stats, error) { return nil, ErrUnsupported }

// ListenerOf finds nothing where the socket tables cannot be read.
func ListenerOf(addr string) (pid int, name string, ok bool) { return 0, "", false }
