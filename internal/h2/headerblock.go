package h2

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is a HEADERS frame and the CONTINUATION frames after it,
// decoded: what x/net's MetaHeadersFrame holds, in storage the
// connection keeps from one block to the next, so that a request's
// fields cost nothing beyond the strings HPACK makes of them. Its fields
// are valid until the next block is read.
type headerBlock struct {
	streamID    uint32
	streamEnded bool
	// dependsOnItself: the frame's priority names its own stream.
	dependsOnItself bool
	// fields are the pseudo-fields, then the regular ones.
	fields []hpack.HeaderField
	// truncated: the fields went past the connection's limit on a
	// head; those past it were decoded (HPACK's table must follow) but
	// dropped.
	truncated bool
}

// pseudo is the value of the pseudo-field ":"+name, "" when absent.
func (b *headerBlock) pseudo(name string) string {
	for _, f := range b.fields {
		if !f.IsPseudo() {
			break
		}
		if f.Name[1:] == name {
			return f.Value
		}
	}
	return ""
}

// regular are the fields after the pseudo-fields.
func (b *headerBlock) regular() []hpack.HeaderField {
	return b.fields[len(b.pseudos()):]
}

// pseudos are the pseudo-fields.
func (b *headerBlock) pseudos() []hpack.HeaderField {
	for i, f := range b.fields {
		if !f.IsPseudo() {
			return b.fields[:i]
		}
	}
	return b.fields
}

// blockDecoder decodes a connection's header blocks, on its reader
// goroutine, with the checks x/net's Framer makes when it reads
// MetaHeadersFrames (RFC 9113 §8.2 and §8.3): a field value or name that
// is not valid, a pseudo-field after a regular one, an unknown or
// repeated pseudo-field, request and response pseudo-fields mixed, are a
// stream error PROTOCOL_ERROR; a list past the limit is truncated, and a
// fragment far past it, or any after an invalid field, ends the
// connection.
type blockDecoder struct {
	dec *hpack.Decoder
	max uint32 // the limit on a head's fields, HPACK's sizes
	b   headerBlock
	// what is left of the limit for the fields, and for the names a
	// trailer field announces (counted apart, as x/net counts them).
	headersLeft, trailersLeft uint32
	sawRegular                bool
	invalid                   error
}

// keptFields bounds the field storage a connection keeps between blocks
// (5 KiB): a client that sent one large head does not make it keep that
// much.
const keptFields = 128

func newBlockDecoder(max uint32) *blockDecoder {
	d := &blockDecoder{max: max}
	d.dec = hpack.NewDecoder(initialTableSize, d.emit)
	d.dec.SetMaxStringLength(int(max))
	return d
}

// initialTableSize is HPACK's dynamic table size until the server says
// otherwise, which it does not (RFC 7541 §4.2).
const initialTableSize = 4096

// read decodes the block hf begins, reading the CONTINUATION frames
// after it from fr. The error is a connection or stream error, as x/net
// returns them; with one, the block is done with already.
func (d *blockDecoder) read(fr *http2.Framer, hf *http2.HeadersFrame) (_ *headerBlock, err error) {
	defer func() {
		if err != nil {
			d.done()
		}
	}()
	d.begin(hf)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// A fragment past twice what is left of the limit (any, once
		// the limit is spent) is not decoded but ends the connection,
		// as one after an invalid field does.
		if int64(len(frag)) > 2*int64(d.headersLeft+d.trailersLeft) || d.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := d.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf := f.(*http2.ContinuationFrame) // the Framer checks the order
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := d.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if d.invalid == nil {
		d.invalid = checkPseudos(d.b.pseudos())
	}
	if d.invalid != nil {
		return nil, http2.StreamError{StreamID: d.b.streamID, Code: http2.ErrCodeProtocol, Cause: d.invalid}
	}
	return &d.b, nil
}

// done lets go of the block's fields, which would otherwise keep its
// values (cookies, credentials, up to the limit on a head) alive while
// the connection waits for the next. The caller is done with the block.
func (d *blockDecoder) done() {
	clear(d.b.fields)
	d.b.fields = d.b.fields[:0]
}

// begin readies the decoder for the block hf begins. The last block's
// fields are cleared already (done).
func (d *blockDecoder) begin(hf *http2.HeadersFrame) {
	fields := d.b.fields[:0]
	if cap(fields) > keptFields {
		fields = nil
	}
	d.b = headerBlock{
		streamID:        hf.StreamID,
		streamEnded:     hf.StreamEnded(),
		dependsOnItself: hf.HasPriority() && hf.Priority.StreamDep == hf.StreamID,
		fields:          fields,
	}
	d.headersLeft, d.trailersLeft = d.max, d.max
	d.sawRegular, d.invalid = false, nil
	d.dec.SetEmitEnabled(true)
}

// emit takes a field HPACK decoded.
func (d *blockDecoder) emit(f hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		d.invalid = errFieldValue
	}
	if f.IsPseudo() {
		if d.sawRegular {
			d.invalid = errPseudoAfterRegular
		}
	} else {
		d.sawRegular = true
		if !validFieldName(f.Name) {
			d.invalid = errFieldName
		}
	}
	if d.invalid != nil {
		d.dec.SetEmitEnabled(false)
		return
	}
	left, size := &d.headersLeft, f.Size()
	if f.Name == "trailer" {
		// Each name it announces counts as a field of its own.
		n := uint32(strings.Count(f.Value, ",") + 1)
		left, size = &d.trailersLeft, uint32(len(f.Value))-n+1+n*hpack.HeaderField{}.Size()
	}
	if size > *left {
		d.dec.SetEmitEnabled(false)
		d.b.truncated = true
		d.headersLeft, d.trailersLeft = 0, 0
		return
	}
	*left -= size
	d.b.fields = append(d.b.fields, f)
}

// validFieldName: a field name as it must be on the wire, a token in
// lower case.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}

// checkPseudos checks a block's pseudo-fields: known ones, each once,
// not a request's and a response's together.
func checkPseudos(pseudos []hpack.HeaderField) error {
	request, response := false, false
	for i, f := range pseudos {
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return errPseudoUnknown
		}
		for _, g := range pseudos[:i] {
			if g.Name == f.Name {
				return errPseudoRepeated
			}
		}
	}
	if request && response {
		return errPseudoMixed
	}
	return nil
}

// Why a header block is a stream error.
var (
	errFieldValue         = errors.New("h2: invalid header field value")
	errFieldName          = errors.New("h2: invalid header field name")
	errPseudoAfterRegular = errors.New("h2: pseudo header field after regular")
	errPseudoUnknown      = errors.New("h2: unknown pseudo header field")
	errPseudoRepeated     = errors.New("h2: repeated pseudo header field")
	errPseudoMixed        = errors.New("h2: request and response pseudo header fields")
)
