// Package sdnotify owns gatehouse's talk with systemd's service manager:
// the sd_notify messages that say gatehouse is ready, reloading, stopping
// or handing over to an upgraded process, and the watchdog keep-alive.
// Outside systemd (NOTIFY_SOCKET unset) every part of it does nothing.
//
// NOTIFY_SOCKET and WATCHDOG_* stay in gatehouse's environment: a
// successor started by a self-upgrade inherits them and takes over as
// the main process. The apps' environment is built without them (the
// supervisor's baseEnv), since systemd would take their messages as the
// service's own.
package sdnotify
