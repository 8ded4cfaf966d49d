// Package docscheck holds checks of the repository's documentation
// (README.md, ARCHITECTURE.md, docs/) against the repository itself, so
// that the docs cannot name a file that has moved or gone. It has no code
// outside its tests and nothing imports it.
package docscheck
