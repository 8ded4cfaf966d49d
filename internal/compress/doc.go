// Package compress compresses proxied answers on the fly with zstd, gzip
// and brotli. It owns the decisions and the mechanics, not the plumbing:
//
//   - Negotiate picks a content coding from the request's Accept-Encoding
//     (q-values, "*", "identity;q=0"; ties go to the configured order).
//   - Applies says whether an answer may be compressed at all (status,
//     method, Content-Encoding, Cache-Control: no-transform, Content-Range,
//     content type, length).
//   - Prepare rewrites the answer's header fields for the coded body, and
//     AddVary marks an answer of a compressible type as varying by
//     Accept-Encoding whether or not this one is compressed.
//   - PrepareNotModified gives a 304 the Vary and ETag of the 200 it
//     revalidates, compressed or not, and PreparePartial gives Vary to a
//     206 whose whole would have been compressed: the identity part was
//     chosen because of the Range, so by Accept-Encoding too.
//   - NewWriter hands out a pooled encoder whose Flush pushes everything
//     written so far to the client (server-sent events arrive one by
//     one); Close ends the stream, Release returns the encoder.
//
// The gateway's response copy calls these; this package imports nothing
// of gatehouse. Encoders come from github.com/klauspost/compress (gzip,
// zstd) and github.com/andybalholm/brotli.
//
// # Defaults and why
//
// The figures are CPU time per answer on a shared 2-core AMD EPYC VM
// (they move by 20 to 30% between runs), measured with the package's
// benchmarks on slices of the Go specification's HTML (go test -bench .
// ./internal/compress); ratio is compressed/original. nginx's row is C
// zlib with a stream set up per answer, as nginx does.
//
//	                      1 KiB answer       64 KiB answer
//	gzip level 1          13 µs  0.495       210 µs  0.339
//	gzip level 5 (dflt)   15 µs  0.472       480 µs  0.290
//	gzip level 9          34 µs  0.456      3100 µs  0.274
//	zstd default          12 µs  0.492       400 µs  0.300
//	brotli quality 4      51 µs  0.439      1600 µs  0.285
//	nginx's zlib level 1  60 µs  0.474       620 µs  0.339  (C zlib 1.2.13)
//
// Encodings: zstd, gzip, br. Every current browser sends "gzip, deflate,
// br, zstd" without q-values, so the order decides. zstd first, as Caddy
// does: its CPU cost is gzip's, its ratio about gzip's, and clients decode
// it fastest. gzip before br because the pure-Go brotli encoder costs
// three times gzip's CPU at quality 4 for answers about 2% smaller, and
// at lower qualities it is behind gzip on both counts; its buffers also
// grow with the answer (about 6.5 MiB after a 1 MiB answer). A client
// that weights br higher still gets br.
//
// Level: gzip 5 (Caddy's default), brotli 4, zstd's default speed (about
// zstd level 3). gzip 5 costs about what nginx's default, zlib at
// gzip_comp_level 1, costs on a 64 KiB page, for answers 15% smaller;
// level 9 costs six times as much for another 5%. Brotli 4 and zstd's
// default are the usual on-the-fly settings; higher ones are for
// precompressed files. Options.Level sets all three on one 1 to 9 scale.
//
// MinSize: 1024 bytes. An answer under 1 KiB fits with its header fields
// in one TCP segment whether compressed or not, so compressing it saves no
// packet and no round trip, yet costs an encoder reset (most of the 15 µs
// above) and, for gzip, 18 bytes of framing. nginx's gzip_min_length of 20
// compresses answers that come out larger; Caddy's 512 pays the reset for
// a few hundred bytes. Answers of unknown length are always compressed.
//
// Types: text/*, JSON, JavaScript, XML and their +json/+xml suffixes,
// YAML, wasm, SVG, icons, bmp and the uncompressed font formats - Caddy's
// list without what is already compressed (woff, woff2) or rare. text/*
// includes text/event-stream: Flush makes that safe.
//
// HEAD: judged as the GET would be (RFC 9110 9.3.2 asks for the same
// header fields), so a cache sees the same Content-Encoding, Vary and
// ETag; the caller writes no body. A strong ETag becomes weak on a
// compressed answer, as nginx does, so If-None-Match still revalidates
// (its comparison is weak) while the compressed and identity answers
// carry different tags.
//
// Revalidation: a 304 sends the validators and Vary of the 200 it stands
// for (RFC 9110 15.4.5), or a cache cannot match it to the copy it
// holds. The app (or the static route) answers with the identity body's
// strong ETag, so a client whose If-None-Match names the weak form, and
// which takes a coding offered, gets the weak form back; one that names
// the strong form holds the identity body and gets that. Vary goes on
// every 304 but those whose fields show the answer is never compressed
// (its type, its own Content-Encoding, no-transform) and, when it shows
// no type, a static route's whose path's extension names a type never
// compressed (an image's 304 says no Vary, as its 200 did not): nginx and Caddy
// leave the ETag strong, and nginx leaves Vary off.
//
// Memory: each pooled encoder holds about 1 MiB for gzip 5 and 1.5 MiB
// for zstd (its window is bounded to 1 MiB instead of the library's
// 8 MiB), 0.8 MiB for brotli after small answers; a brotli encoder that
// took more than 256 KiB is not pooled again. A warm pool allocates
// nothing per answer, but for a few dozen bytes when zstd flushes.
package compress
