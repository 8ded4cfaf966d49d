// Package static owns serving a directory for a static route: turning a
// decoded request path into a file beneath the route's root, and answering
// GET and HEAD for it the way nginx and Caddy do. It imports nothing of
// gatehouse; the gateway builds a Server from a route's static: block and
// calls Serve with the path left after its prefix.
//
// What it owns, and the choices it makes:
//
//   - Confinement. Every file is opened beneath the root through os.Root
//     (openat-style, component by component), which refuses a name that
//     leaves the root, including through a symlink or an absolute symlink.
//     With AllowSymlinks, symlinks are followed wherever they point, but
//     the name itself still cannot climb out. The root stays open while
//     its path names the same directory (a stat at most once a second
//     checks), so a root that is a symlink switched by a deploy is
//     followed within a second, and the files kept in memory from the old
//     one are dropped. A path with a NUL byte is refused with 400; a path
//     with a backslash or a "." or ".." segment (after decoding, so %2e%2e
//     and friends) with 404, as are names that escape the root, that are
//     not regular files or directories, or that cannot be opened: a refusal
//     does not tell whether something exists. Hidden files are served like
//     any other, as nginx does.
//   - Directories. No listings. A directory with an index file, asked for
//     without its trailing slash, is redirected (308, relative Location) to
//     the slash form of the URL the client asked for, whatever prefix the
//     caller took off or put on, as Caddy does; nginx answers 301 there. A directory
//     without an index is 404 (nginx: 403). A file asked for with a
//     trailing slash is 404. The path "" (what stripping a prefix leaves
//     of /static when the client asked for /static) is the root without
//     its slash, and is redirected the same way.
//   - try_files, as nginx's: each entry but the last, with $path replaced,
//     is a file that must exist, or with a trailing slash a directory that
//     must have an index (nginx only asks that the directory exist); the
//     last is the fallback file, or "=CODE" for a bare status; nothing
//     found is 404. The request path is checked before any entry, so a
//     refused path never reaches the fallback. Under try_files, a directory
//     is not redirected to its slash form, and the path "" is the root as
//     "/" is.
//   - Precompressed siblings (NAME.br, NAME.zst, NAME.gz). The client's
//     Accept-Encoding q-values decide, Options.Precompressed breaks ties
//     and says which encodings to look for (Caddy's rule); an encoding at
//     q=0, or not named and not covered by "*", is never sent. When no
//     sibling fits, the file itself is sent, even under identity;q=0 (as
//     nginx and Caddy do). The sibling is the representation: its own
//     strong ETag (marked with the encoding), Last-Modified and length,
//     the original's Content-Type, Content-Encoding, and Range requests
//     are answered from its bytes, as Caddy does (nginx's gzip_static
//     ignores the Range and sends the whole sibling): a 206's
//     Content-Range and a 416's length count the sibling's bytes, which
//     are what a client that resumes the answer it was sent holds;
//     If-Range with the sibling's ETag keeps a resumed download on the same
//     bytes. Vary: Accept-Encoding is on every file answer while
//     precompression is configured.
//   - Conditional and range requests, after RFC 9110 and net/http's
//     ServeContent: strong ETags from the modification time and size,
//     Last-Modified, If-Match, If-Unmodified-Since, If-None-Match,
//     If-Modified-Since, If-Range, single ranges, multipart/byteranges for
//     several, 416 with Content-Range: bytes */SIZE. A Range in another
//     unit is ignored (nginx does too; ServeContent answers 416). Ranges
//     that add up to more than the file, or more than 64 ranges, are
//     answered with the whole file.
//   - Content-Type from the extension (mime.TypeByExtension), else sniffed
//     from the first 512 bytes of the file (of the original, when a
//     sibling is sent).
//   - Small files kept in memory, as nginx's open_file_cache keeps
//     descriptors: a regular file up to Options.CacheFileMax (64 KiB) is
//     read once and kept, with its type, under Options.CacheTotal (32 MiB
//     in all, counting 256 bytes an entry beside the bytes; evicted by
//     clock, second chance). Its key is the name relative to the root
//     after the path checks above, and it is kept only for the root it was
//     read through. A kept file is answered (conditionals and ranges too)
//     with no file system call for up to a second, and a kept first index
//     answers for its directory asked for with the slash, the directory
//     not opened; then a stat through the root, under the same
//     confinement as opening, confirms the file (same device, inode,
//     size, mode, modification and change time) or drops it, and the
//     request goes to the file system. So a file changed, removed, made
//     unreadable or replaced by a symlink out of the root is seen within a
//     second, not at once; what is sent meanwhile is only ever bytes read
//     through the root. Larger files are opened for every request and
//     handed to the writer's ReadFrom (sendfile).
//   - Formatted validators: the ETag, Last-Modified and length of recently
//     served files are kept per Server (a direct-mapped table keyed by
//     device, inode, size, modification time and encoding), so a hit
//     formats nothing; a changed file misses by its key.
//   - The copy: a kept file is written from memory; for one opened,
//     without a range the *os.File itself is handed to the
//     writer's ReadFrom when it has one (what io.Copy would do), so a
//     writer that can use sendfile does; a range goes as an
//     *io.LimitedReader over the file, which net/http's sendfile path also
//     takes. Otherwise the bytes go through a pooled buffer. The length
//     sent is the one stat'ed: a writer's ReadFrom should stop at the
//     Content-Length it was given, in case the file grew meanwhile.
package static
