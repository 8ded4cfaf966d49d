package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/handover"
	"github.com/gatehouse/gatehouse/internal/reaper"
	"github.com/gatehouse/gatehouse/internal/sdnotify"
	"github.com/gatehouse/gatehouse/internal/server"
)

func newRunCmd() *cobra.Command {
	var file, listen, adminAddr string
	c := &cobra.Command{
		Use:   "run [-c FILE] [--listen ADDR] [--admin ADDR] [-- COMMAND ARGS...]",
		Short: "Run the app's instances and serve them through the gateway",
		RunE: func(c *cobra.Command, args []string) error {
			return runCmd(c, file, listen, adminAddr, args)
		},
	}
	configFlag(c, &file)
	c.Flags().StringVar(&listen, "listen", "", "public listen address (overrides the config)")
	adminFlag(c, &adminAddr)
	return c
}

func runCmd(c *cobra.Command, file, listen, adminAddr string, argv []string) (err error) {
	// Started by `gatehouse upgrade`: the previous gatehouse waits to hear
	// that this one serves, or why it will not.
	inherit, err := handover.FromEnv()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && inherit != nil {
			inherit.Fail(err) // a no-op once it said it was ready
		}
	}()
	// Started by systemd with its socket units: the listening sockets it
	// holds across gatehouse's restarts. An upgrade's successor has none:
	// it inherits them through the handover.
	activated := server.ActivatedSockets()
	cfg, err := findConfig(file, argv)
	if err != nil {
		return err
	}
	override := func(cfg *config.Config) error {
		flags := map[string]string{}
		if listen != "" {
			cfg.Listen = listen
			flags["listen"] = "--listen"
		}
		if adminAddr != "" {
			cfg.Admin = adminAddr
			flags["admin"] = "--admin"
		}
		return cfg.CheckOverrides(flags)
	}
	if err := override(cfg); err != nil {
		return err
	}
	// What validate reports, refused before anything starts.
	if err := cfg.Preflight(); err != nil {
		return err
	}
	// The same warning as validate's: such a command fails at once.
	term := newTerminal(c.OutOrStdout(), c.ErrOrStderr(), cfg.TerminalJSON())
	warnMissingExecutables(term.warnings, cfg, file)
	logger := term.logger
	// As a container's PID 1, orphans come to gatehouse: it reaps them
	// for as long as it runs and, last, stops whatever is left.
	defer reapOrphans(logger)()
	// Under systemd (Type=notify) gatehouse reports readiness, reloads and
	// shutdown, and keeps the watchdog; elsewhere notify is nil.
	notify := sdnotify.New(logger)
	// An upgrade starts the executable at this path again, read afresh:
	// the path as this process started, whatever is there by then.
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find gatehouse's own executable: %w", err)
	}
	// A drained predecessor's successor starts drained; the variable is
	// not passed on to the apps or a later successor.
	drained := inherit != nil && os.Getenv(server.DrainedEnv) == "1"
	os.Unsetenv(server.DrainedEnv)
	var adoptTimeout time.Duration
	if inherit != nil {
		adoptTimeout = server.UpgradeTimeoutFromEnv(os.Getenv)
	}
	os.Unsetenv(server.UpgradeTimeoutEnv)
	srv, err := server.New(cfg, server.Options{Console: term.console, Logger: logger, Notify: notify, Handover: inherit,
		Executable: exe, Args: os.Args[1:], Override: override, Drained: drained, Activated: activated,
		AdoptTimeout: adoptTimeout})
	if err != nil {
		return err
	}
	// Lifecycle events on the terminal, one line each; the printer ends
	// after Run, once it has printed the events of the shutdown too.
	evs, unsubscribe := srv.Events().Subscribe(1024)
	printed := make(chan struct{})
	go func() { defer close(printed); printLifecycleTo(term.event, evs) }()
	finishPrinting := func() { unsubscribe(); <-printed }
	defer finishPrinting() // unsubscribe may be called twice; printed stays closed
	ctx, stop := stopOnSignals(srv, logger)
	defer stop()
	// SIGHUP is handled until gatehouse exits: unhandled, its default
	// action would kill gatehouse mid-stop, leaving the apps unsupervised.
	hupCtx, endHUP := context.WithCancel(context.Background())
	hupDone := reloadOnHUP(ctx, hupCtx, srv, logger)
	usr2Done := upgradeOnUSR2(ctx, srv, logger)
	defer func() { stop(); endHUP(); <-hupDone; <-usr2Done }()
	where := []any{"listen", srv.Addr()}
	if a := srv.TLSAddr(); a != "" {
		where = append(where, "https", a)
	}
	logger.Info("gatehouse running", append(where, "admin", srv.AdminAddr(), "apps", len(cfg.Apps), "data_dir", cfg.DataDir)...)
	err = srv.Run(ctx)
	finishPrinting()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if srv.HandedOver() {
		logger.Info("gatehouse handed over to its successor and exits; the apps run on")
		return nil
	}
	logger.Info("gatehouse stopped")
	return nil
}

// stopOnSignals returns a context that ends on the first SIGTERM or
// SIGINT (gatehouse's stop); a second one hurries the stop along: the
// rest of shutdown_delay is skipped (Ctrl-C twice). The returned func
// stops listening for them; it may be called more than once.
func stopOnSignals(srv *server.Server, logger *slog.Logger) (context.Context, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	end := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-sigs:
			cancel()
		case <-end:
			return
		}
		select {
		case sig := <-sigs:
			logger.Info("second signal: stopping without the rest of shutdown_delay", "signal", sig)
			srv.Hurry()
		case <-end:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(end)
			<-done
			cancel()
		})
	}
}

// reloadOnHUP reloads every app on SIGHUP until ctx ends, and ignores
// SIGHUP from then until life ends; the returned channel closes when its
// goroutine has stopped.
func reloadOnHUP(ctx, life context.Context, srv *server.Server, logger *slog.Logger) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-life.Done():
				return
			case <-hup:
				if ctx.Err() != nil {
					logger.Info("SIGHUP ignored: gatehouse is stopping")
					continue
				}
				logger.Info("SIGHUP: reloading")
				// Each step of the reload is an event too, which the
				// terminal shows: the steps themselves only at debug
				// level, so that none is printed twice.
				err := srv.Reload(ctx, "", func(format string, args ...any) {
					logger.Debug("reload: " + fmt.Sprintf(format, args...))
				})
				if err != nil {
					logger.Error("reload failed", "err", err)
				}
			}
		}
	}()
	return done
}

// upgradeOnUSR2 upgrades gatehouse on SIGUSR2 (for init systems; the
// command is gatehouse upgrade) until ctx ends; the returned channel
// closes when its goroutine has stopped.
func upgradeOnUSR2(ctx context.Context, srv *server.Server, logger *slog.Logger) <-chan struct{} {
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(usr2)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr2:
				logger.Info("SIGUSR2: upgrading")
				pid, err := srv.Upgrade(ctx, 0, func(format string, args ...any) {
					logger.Info("upgrade: " + fmt.Sprintf(format, args...))
				})
				if err != nil {
					logger.Error("upgrade failed; this gatehouse serves on", "err", err)
					continue
				}
				logger.Info("upgraded; the new gatehouse serves", "pid", pid)
				return
			}
		}
	}()
	return done
}

// finishTimeout bounds how long gatehouse, as PID 1, waits for the
// processes that outlived the apps to end after SIGTERM, before it exits
// and the kernel kills them.
const finishTimeout = 2 * time.Second

// reapOrphans reaps orphaned processes, when they come to gatehouse (as
// PID 1 or a subreaper), until the returned func is called; that func
// also ends, as PID 1, the processes still running (see reaper.Finish).
func reapOrphans(logger *slog.Logger) func() {
	if !reaper.ProcIsOurs() {
		logger.Warn("gatehouse is PID 1 but /proc is another PID namespace's: orphaned processes cannot be found and reaped; mount /proc for this namespace (docker and Kubernetes do; unshare needs --mount-proc)")
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reaper.Run(ctx, logger)
	}()
	return func() {
		if left := reaper.Finish(finishTimeout); left > 0 {
			logger.Warn("processes still running as gatehouse exits; the kernel kills them", "count", left)
		}
		stop()
		<-done
	}
}
