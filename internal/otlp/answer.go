package otlp

import (
	"encoding/base64"
	"fmt"
	"math"
	"mime"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// PartialError is an export taken in part, which OTLP says is not to
// be retried: the receiver answered with a partial_success, refusing
// Rejected spans and taking the rest or, with none refused, taking
// every span and warning; or the spans went as several requests
// (maxRequest) and Rejected of them were in those not taken, which Err
// says why.
type PartialError struct {
	// Rejected is how many spans were not taken (0 for a warning).
	Rejected int64
	// Message is the receiver's word on why, cut short.
	Message string
	// Err is the failure of the first request not taken, of spans sent
	// as several requests; nil otherwise.
	Err error
}

func (e *PartialError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("otlp: %d spans not taken: %v", e.Rejected, e.Err)
	case e.Rejected == 0:
		return "otlp: the receiver took every span, and warned: " + e.Message
	case e.Message == "":
		return fmt.Sprintf("otlp: the receiver refused %d spans", e.Rejected)
	}
	return fmt.Sprintf("otlp: the receiver refused %d spans: %s", e.Rejected, e.Message)
}

func (e *PartialError) Unwrap() error { return e.Err }

// fields calls f for each field of the protobuf message b, with its
// wire type and its bytes (a length-delimited one's content) or varint;
// false when b is not a message. A field of another wire type than its
// declaration's is unknown to protobuf, and so is to be left alone.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			f(num, typ, v, 0)
			b = b[n:]
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			f(num, typ, nil, x)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

// partial reads an ExportTraceServiceResponse: nil unless its
// partial_success (field 1) refuses spans or says something. A message
// field that comes twice is merged, as protobuf's are.
func partial(b []byte) error {
	var p *PartialError
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num != 1 || typ != protowire.BytesType {
			return
		}
		if p == nil {
			p = &PartialError{}
		}
		fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) {
			switch {
			case num == 1 && typ == protowire.VarintType: // rejected_spans, an int64: more is all of them
				p.Rejected = int64(min(x, math.MaxInt64))
			case num == 2 && typ == protowire.BytesType: // error_message
				p.Message = cut(string(v))
			}
		})
	})
	if p == nil || p.Rejected == 0 && p.Message == "" {
		return nil
	}
	return p
}

// answerMessage is the text of an error answer: a google.rpc.Status's
// message when it is protobuf, as OTLP/HTTP's receivers send it, else
// the text's first line.
func answerMessage(contentType string, b []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-protobuf" {
		msg, _, _ := rpcStatus(b)
		return cut(msg)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return cut(line)
}

const retryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

// rpcStatus reads a google.rpc.Status: its message (field 2), and the
// delay of a google.rpc.RetryInfo among its details (field 3, each an
// Any), zero when it has none.
func rpcStatus(b []byte) (msg string, retryDelay time.Duration, retryInfo bool) {
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if typ != protowire.BytesType {
			return
		}
		switch num {
		case 2:
			msg = string(v)
		case 3:
			var typeURL string
			var value []byte
			fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
				switch {
				case num == 1 && typ == protowire.BytesType:
					typeURL = string(v)
				case num == 2 && typ == protowire.BytesType:
					value = v
				}
			})
			if typeURL == retryInfoType {
				retryDelay, retryInfo = retryInfoDelay(value), true
			}
		}
	})
	return msg, retryDelay, retryInfo
}

// retryInfoDelay reads RetryInfo's retry_delay (a Duration), bounded by
// an hour.
func retryInfoDelay(b []byte) time.Duration {
	var secs, nanos uint64
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num != 1 || typ != protowire.BytesType {
			return
		}
		fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) {
			switch {
			case num == 1 && typ == protowire.VarintType:
				secs = x
			case num == 2 && typ == protowire.VarintType:
				nanos = x
			}
		})
	})
	if int64(secs) < 0 || int64(nanos) < 0 {
		return 0
	}
	return min(time.Duration(min(secs, 3600))*time.Second+time.Duration(nanos%1e9), time.Hour)
}

// grpcDetails reads grpc-status-details-bin (a google.rpc.Status in
// base64, padded or not) for its RetryInfo's delay; a RetryInfo of no
// delay is a nanosecond, so that it still says the call may be retried.
func grpcDetails(v string) time.Duration {
	if v == "" {
		return 0
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return 0
	}
	_, d, ok := rpcStatus(b)
	if ok && d == 0 {
		d = time.Nanosecond
	}
	return d
}
