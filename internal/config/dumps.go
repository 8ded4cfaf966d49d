package config

import "time"

// Kinds of process dump (gatehouse dump --kind, auto_heal.dump_kind).
const (
	DumpCore   = "core"
	DumpStacks = "stacks"
	DumpHeap   = "heap"
)

// Defaults of Dumps.
const (
	DefaultDumpsMaxSize      Size = 4 << 30
	DefaultDumpsMaxCount          = 20
	DefaultDumpsMaxAge            = Duration(7 * 24 * time.Hour)
	DefaultDumpsDrainTimeout      = Duration(10 * time.Second)
)

// Dumps is the dumps: block: where the process dumps of gatehouse dump
// and of auto_heal's action dump are kept (data_dir/dumps), how many and
// for how long, and how long an instance is given to finish its
// requests before a dump pauses it.
type Dumps struct {
	// MaxSize is what the dumps kept may take on disk together; past it
	// the oldest are removed, with a dump_removed event each; the newest
	// is kept whatever its size, until the next is taken. Unit: bytes,
	// written as a size ("4GiB"). Default 4GiB; 0 is an error.
	MaxSize Size `yaml:"max_size" secret:"false"`
	// MaxCount is how many dumps are kept; past it the oldest are
	// removed. Unit: dumps. Default 20; at least 1.
	MaxCount int `yaml:"max_count" secret:"false"`
	// MaxAge is how long a dump is kept. Unit: a duration ("168h").
	// Default 168h (7 days); 0 keeps dumps until max_size or max_count
	// removes them.
	MaxAge Duration `yaml:"max_age" secret:"false"`
	// DrainTimeout is how long an instance taken out of rotation for a
	// dump is given to finish the requests it has before the dump
	// starts; a request still running then (a stuck one, often the
	// reason for the dump) is dumped with it. Unit: a duration. Default
	// 10s; 0 dumps at once.
	DrainTimeout Duration `yaml:"drain_timeout" secret:"false"`
}

// DefaultDumps returns the dumps: block a config gets when it leaves it
// out.
func DefaultDumps() Dumps {
	return Dumps{MaxSize: DefaultDumpsMaxSize, MaxCount: DefaultDumpsMaxCount,
		MaxAge: DefaultDumpsMaxAge, DrainTimeout: DefaultDumpsDrainTimeout}
}

// DumpKinds lists the kinds of dump, in the order the docs give them.
func DumpKinds() []string { return []string{DumpCore, DumpStacks, DumpHeap} }

func (v *validator) dumps(d *Dumps, path string) {
	if d.MaxSize <= 0 {
		v.errorf(path+".max_size", "must be > 0, e.g. 4GiB")
	}
	// Negative durations are refused as they are decoded.
	v.atLeastOne(path+".max_count", d.MaxCount)
}

// DumpOf is the kind of dump action dump takes: dump_kind, core when
// it is left out.
func (h *AutoHeal) DumpOf() string {
	if h.DumpKind == "" {
		return DumpCore
	}
	return h.DumpKind
}
