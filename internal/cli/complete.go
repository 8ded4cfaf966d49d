package cli

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
)

// completeTimeout bounds the status request a completion makes: a shell
// waiting on Tab must not hang on a gatehouse that does not answer.
const completeTimeout = time.Second

// names returns the app names and instance ids of the running gatehouse
// the flags name (GET /api/status), else the config's app names.
func (f *opFlags) names(ctx context.Context) (apps, instances []string) {
	cl, err := f.client()
	if err != nil {
		return nil, nil // a config that does not load names nothing
	}
	cl.HTTP = &http.Client{Timeout: completeTimeout}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	if st, err := cl.Status(ctx); err == nil {
		for _, a := range st.Apps {
			apps = append(apps, a.Name)
			for _, in := range a.Instances {
				instances = append(instances, in.ID)
			}
		}
		return apps, instances
	}
	if cfg, err := config.Find(f.file, nil); err == nil {
		apps = slices.Clone(cfg.Order)
	}
	return apps, nil
}

func completionContext(c *cobra.Command) context.Context {
	if ctx := c.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// completeFirst completes a command's first argument with app names, and
// instance ids too when withInstances; later arguments get nothing.
func (f *opFlags) completeFirst(withInstances bool) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		apps, insts := f.names(completionContext(c))
		if withInstances {
			apps = append(apps, insts...)
		}
		return withPrefix(apps, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeApps completes a flag's value with app names.
func (f *opFlags) completeApps(c *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	apps, _ := f.names(completionContext(c))
	return withPrefix(apps, prefix), cobra.ShellCompDirectiveNoFileComp
}

// completeInstances completes a flag's value with instance ids.
func (f *opFlags) completeInstances(c *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	_, insts := f.names(completionContext(c))
	return withPrefix(insts, prefix), cobra.ShellCompDirectiveNoFileComp
}

// withPrefix keeps the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, prefix) })
}
