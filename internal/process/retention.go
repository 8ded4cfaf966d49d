package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// logName is an instance's log file name: ID.log, or a rotated one,
// ID-2006-01-02T15-04-05.000[-reason].log as timberjack names them.
var logName = regexp.MustCompile(`^(.+-[0-9]+)(?:-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\.[0-9]{3}(?:-[a-z]+)?)?\.log$`)

// PruneLogs removes the log files under logsDir (logs/APP/ID.log and
// their rotated files) of the instances that are gone: live(app, id) is
// false and none of the instance's files was written to within maxAge
// before now. An app directory left empty is removed too. It returns the
// files removed; maxAge 0 or less removes nothing.
func PruneLogs(logsDir string, live func(app, id string) bool, maxAge time.Duration, now time.Time) ([]string, error) {
	if maxAge <= 0 {
		return nil, nil
	}
	apps, err := os.ReadDir(logsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune logs: %w", err)
	}
	var removed []string
	var errs []error
	for _, a := range apps {
		if !a.IsDir() {
			continue
		}
		dir := filepath.Join(logsDir, a.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("prune logs: %w", err))
			continue
		}
		type inst struct {
			files  []string
			latest time.Time
		}
		byID := map[string]*inst{}
		for _, f := range files {
			m := logName.FindStringSubmatch(f.Name())
			if m == nil || !f.Type().IsRegular() {
				continue
			}
			fi, err := f.Info()
			if err != nil {
				continue
			}
			in := byID[m[1]]
			if in == nil {
				in = &inst{}
				byID[m[1]] = in
			}
			in.files = append(in.files, filepath.Join(dir, f.Name()))
			if fi.ModTime().After(in.latest) {
				in.latest = fi.ModTime()
			}
		}
		gone := 0
		for id, in := range byID {
			if live(a.Name(), id) || now.Sub(in.latest) <= maxAge {
				continue
			}
			gone++
			for _, f := range in.files {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("prune logs: %w", err))
					continue
				}
				removed = append(removed, f)
			}
		}
		if gone > 0 && gone == len(byID) {
			// An app removed from the config: its directory goes with
			// its last files (rmdir refuses one that is not empty).
			os.Remove(dir)
		}
	}
	return removed, errors.Join(errs...)
}
