package spool

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// What a spool holds reads back byte for byte, in memory while the
// budgets allow and in its file beyond, and every byte of budget comes
// back at Close.
func TestSpoolHoldsAndGivesBack(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       int
		max        int64
		hint       int64
		process    int64
		conn       int64
		wantEnded  bool
		wantOnDisk bool
	}{
		{"small known length in memory", 300, 300, 300, 1 << 20, 1 << 20, true, false},
		{"unknown length in memory", 70 << 10, 1 << 20, -1, 1 << 20, 1 << 20, true, false},
		{"process budget spent: spills", 70 << 10, 1 << 20, -1, 32 << 10, 1 << 20, true, true},
		{"connection budget spent: spills", 70 << 10, 1 << 20, -1, 1 << 20, 40 << 10, true, true},
		{"no memory at all: all on disk", 5000, 5000, 5000, 0, 0, true, true},
		{"longer than max: partly held", 100 << 10, 64 << 10, -1, 1 << 20, 1 << 20, false, false},
		{"empty", 0, 100, -1, 1 << 20, 1 << 20, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("0123456789abcdef"), tc.body/16+1)[:tc.body]
			process, conn, disk := NewBudget(tc.process), NewBudget(tc.conn), NewBudget(1<<30)
			var s Spool
			s.Init(t.TempDir(), process, conn, disk)
			// One byte a read: the worst a source can do.
			ended, err := s.Fill(iotest.OneByteReader(bytes.NewReader(body)), tc.max, tc.hint)
			if err != nil || ended != tc.wantEnded || s.OnDisk() != tc.wantOnDisk {
				t.Fatalf("Fill = %v, %v, on disk %v; want %v, nil, on disk %v", ended, err, s.OnDisk(), tc.wantEnded, tc.wantOnDisk)
			}
			if process.Used() > tc.process || conn.Used() > tc.conn {
				t.Errorf("held %d and %d in memory, budgets %d and %d", process.Used(), conn.Used(), tc.process, tc.conn)
			}
			want := body[:min(int64(len(body)), tc.max)]
			for pass := range 2 {
				var got bytes.Buffer
				if pass == 0 {
					_, err = s.WriteTo(&got)
				} else {
					_, err = io.Copy(&got, struct{ io.Reader }{&s})
				}
				if err != nil || !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("pass %d read %d bytes (err %v), want the %d held", pass, got.Len(), err, len(want))
				}
				s.Rewind()
			}
			if tc.wantOnDisk && disk.Used() == 0 || !tc.wantOnDisk && disk.Used() != 0 {
				t.Errorf("disk budget charged %d, on disk %v", disk.Used(), tc.wantOnDisk)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if process.Used() != 0 || conn.Used() != 0 || disk.Used() != 0 {
				t.Errorf("after Close the budgets still count %d, %d and %d", process.Used(), conn.Used(), disk.Used())
			}
		})
	}
}

// A source that says it is longer than it is, or errs, is told apart from
// one that ended.
func TestSpoolSourceFaults(t *testing.T) {
	var s Spool
	s.Init(t.TempDir(), nil, nil, nil)
	defer s.Close()
	if _, err := s.Fill(strings.NewReader("abcdef"), 3, 3); !errors.Is(err, ErrLonger) {
		t.Errorf("body longer than declared: err %v, want ErrLonger", err)
	}
	s.Close()
	s.Init(t.TempDir(), nil, nil, nil)
	boom := errors.New("boom")
	if _, err := s.Fill(iotest.ErrReader(boom), 10, -1); !errors.Is(err, boom) {
		t.Errorf("failing source: err %v, want it passed on", err)
	}
	s.Close()
	s.Init("/nonexistent/dir", NewBudget(0), nil, nil)
	if _, err := s.Fill(strings.NewReader("abc"), 10, -1); !errors.Is(err, ErrSpill) {
		t.Errorf("spill dir missing: err %v, want ErrSpill", err)
	}
}

// A spent disk budget stops the spool where memory and disk ran out,
// with what it read held and the rest still in the source; the disk
// budget is charged exactly the file's bytes.
func TestSpoolDiskBudget(t *testing.T) {
	body := bytes.Repeat([]byte("d"), 100<<10)
	disk := NewBudget(40 << 10)
	var s Spool
	s.Init(t.TempDir(), NewBudget(0), nil, disk)
	r := bytes.NewReader(body)
	ended, err := s.Fill(r, 1<<20, -1)
	if ended || !errors.Is(err, ErrNoRoom) || !errors.Is(err, ErrSpill) {
		t.Fatalf("Fill = %v, %v; want not ended, ErrNoRoom (an ErrSpill)", ended, err)
	}
	if s.Len() != disk.Used() || s.Len() > 40<<10 || s.Len() == 0 {
		t.Errorf("held %d bytes, disk charged %d; want them equal, within 40 KiB", s.Len(), disk.Used())
	}
	var got bytes.Buffer
	io.Copy(&got, io.MultiReader(&s, r))
	if !bytes.Equal(got.Bytes(), body) {
		t.Errorf("held then rest: %d bytes, want the body's %d", got.Len(), len(body))
	}
	s.Close()
	if disk.Used() != 0 {
		t.Errorf("after Close the disk budget counts %d", disk.Used())
	}
}

// A source that breaks is not a body that ended: Fill returns its error,
// whether it came alone or with the last bytes read, and io.ErrUnexpectedEOF
// (a body of known length cut short) among them. Only io.EOF ends a body.
func TestFillReturnsTheSourcesError(t *testing.T) {
	errBroke := errors.New("broke")
	for _, tc := range []struct {
		name string
		src  io.Reader
		hint int64
		// max is what Fill is asked for; 0 for 100.
		max  int64
		want error
	}{
		{"cut short, the error alone", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF)), 10, 0, io.ErrUnexpectedEOF},
		{"cut short, unknown length", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF)), -1, 0, io.ErrUnexpectedEOF},
		{"an error with the last bytes", &dataThenErr{data: []byte("abc"), err: errBroke}, 10, 0, errBroke},
		{"an unexpected EOF with the last bytes", &dataThenErr{data: []byte("abc"), err: io.ErrUnexpectedEOF}, 10, 0, io.ErrUnexpectedEOF},
		// The declared length held whole (max is the hint), and the
		// source breaks where its end should be (an HTTP/2 stream whose
		// END_STREAM never came): the error, not a body longer than max
		// whose rest is still in the source.
		{"an error after the declared length", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(errBroke)), 3, 3, errBroke},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Spool
			s.Init(t.TempDir(), NewBudget(1<<20), NewBudget(1<<20), nil)
			defer s.Close()
			ended, err := s.Fill(tc.src, cmp.Or(tc.max, 100), tc.hint)
			if ended || !errors.Is(err, tc.want) {
				t.Fatalf("Fill = %v, %v; want false, %v", ended, err, tc.want)
			}
			var got bytes.Buffer
			s.WriteTo(&got)
			if got.String() != "abc" {
				t.Errorf("held %q, want the bytes read before the error", got.String())
			}
		})
	}
}

// dataThenErr returns data and err in one read, then io.EOF, as the
// gateway's response body does once it has let the app's connection go:
// an error not taken with the bytes it came with is lost.
type dataThenErr struct {
	data []byte
	err  error
	told bool
}

func (r *dataThenErr) Read(p []byte) (int, error) {
	if r.told {
		return 0, io.EOF
	}
	r.told = true
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, r.err
}
