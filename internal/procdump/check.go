package procdump

import "fmt"

// Check tells, without touching the process, whether Take of kind on
// pid can be taken: the runtime has the kind (a Go program's stacks
// only with AllowExit), the tool is installed, a core has room. A
// caller that takes the process out of rotation first (a paused process
// answers nothing) asks this before, so that a dump refused does not
// hold it for nothing. Take makes the same checks and more (whether
// gdb's py-bt works, say).
func Check(kind Kind, pid int, opt Options) error {
	rt, err := Detect(pid)
	if err != nil {
		return err
	}
	switch kind {
	case KindCore:
		if _, err := opt.lookPath("gcore"); err != nil {
			return &MissingToolError{Tool: "gcore", Runtime: rt, Install: "install gdb, which ships gcore (apt-get install gdb)"}
		}
		return roomForCore(pid, opt.tempDir())
	case KindStacks:
		return checkStacks(rt, pid, opt)
	case KindHeap:
		if rt != RuntimeNode {
			return &UnsupportedError{Kind: KindHeap, Runtime: rt, Reason: "only node's inspector takes a heap snapshot; take a core instead"}
		}
		return nil
	}
	return fmt.Errorf("unknown dump kind %q", kind)
}

func checkStacks(rt Runtime, pid int, opt Options) error {
	switch rt {
	case RuntimeNode, RuntimeJVM:
		// The inspector needs nothing installed; jcmd is looked for
		// beside the process's own java, which Take does.
		return nil
	case RuntimePython:
		if _, err := opt.lookPath("py-spy"); err == nil {
			return nil
		}
		if _, err := opt.lookPath("gdb"); err != nil {
			return &MissingToolError{Tool: "py-spy or gdb py-bt", Runtime: rt, Install: pythonInstall(pid)}
		}
		return nil
	case RuntimeGo:
		if !opt.AllowExit {
			return goStacksRefused(rt)
		}
		return nil
	}
	if _, err := opt.lookPath("gdb"); err != nil {
		return &MissingToolError{Tool: "gdb", Runtime: rt, Install: "apt-get install gdb"}
	}
	return nil
}
