// Package dumps takes the process dumps of gatehouse dump and of
// auto-heal's action dump, and keeps them. Taking one is a sequence: the
// instance is held out of rotation (its pool member gets no new
// requests, its probes pause), its requests are given drain_timeout to
// finish, the dump is written through package procdump into
// data_dir/dumps, the hold is released, and the dumps: block's cap
// (size, count, age) removes the oldest. Each step is an event. The
// store is the directory itself: a dump's file beside a JSON file of
// what is known of it, so that a restarted gatehouse lists what an
// earlier one took.
package dumps
