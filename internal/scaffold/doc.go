// Package scaffold owns what `gatehouse init` knows about apps it has not
// run yet: Detect looks at a directory's files (a Procfile, package.json,
// pyproject.toml or requirements.txt, go.mod, a Gemfile) and decides how
// to start the app there on the PORT gatehouse gives each instance, and
// Render writes that decision as a commented gatehouse.yaml.
//
// Detection goes in a fixed order and the first match wins, so that the
// same directory always gives the same config; each rule says in the
// file why it matched, and what the app itself must still do (listen on
// PORT). It reads files only: nothing is run, installed or built, and an
// app it cannot place is a Plan of runtime Unknown, rendered as a
// template whose command is left for the user (and that validate
// refuses until it is filled in).
//
// It imports nothing of gatehouse but process, for the one rule on which
// command lines gatehouse starts without a shell in between.
package scaffold
