package otlp

import (
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// PartialError is an export the receiver took only part of: it said so
// in the answer's partial_success, which OTLP says is not to be retried.
type PartialError struct {
	// Rejected is how many spans the receiver refused.
	Rejected int64
	// Message is its word on why, cut short.
	Message string
}

func (e *PartialError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("otlp: the receiver refused %d spans", e.Rejected)
	}
	return fmt.Sprintf("otlp: the receiver refused %d spans: %s", e.Rejected, e.Message)
}

// fields calls f for each field of the protobuf message b, with the
// field's bytes (a length-delimited one's content) or varint; false
// when b is not a message.
func fields(b []byte, f func(num protowire.Number, v []byte, x uint64)) bool {
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
			f(num, v, 0)
			b = b[n:]
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			f(num, nil, x)
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
// partial_success (field 1) refuses spans or says something.
func partial(b []byte) error {
	var p *PartialError
	fields(b, func(num protowire.Number, v []byte, _ uint64) {
		if num != 1 {
			return
		}
		p = &PartialError{}
		fields(v, func(num protowire.Number, v []byte, x uint64) {
			switch num {
			case 1: // rejected_spans
				p.Rejected = int64(x)
			case 2: // error_message
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
		msg, _ := rpcStatus(b)
		return cut(msg)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return cut(line)
}

const retryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

// rpcStatus reads a google.rpc.Status: its message (field 2), and the
// delay of a google.rpc.RetryInfo among its details (field 3, each an
// Any), zero when it has none.
func rpcStatus(b []byte) (msg string, retryDelay time.Duration) {
	fields(b, func(num protowire.Number, v []byte, _ uint64) {
		switch num {
		case 2:
			msg = string(v)
		case 3:
			var typeURL string
			var value []byte
			fields(v, func(num protowire.Number, v []byte, _ uint64) {
				switch num {
				case 1:
					typeURL = string(v)
				case 2:
					value = v
				}
			})
			if typeURL == retryInfoType {
				retryDelay = retryInfoDelay(value)
			}
		}
	})
	return msg, retryDelay
}

// retryInfoDelay reads RetryInfo's retry_delay (a Duration), bounded by
// an hour.
func retryInfoDelay(b []byte) time.Duration {
	var secs, nanos uint64
	fields(b, func(num protowire.Number, v []byte, _ uint64) {
		if num != 1 {
			return
		}
		fields(v, func(num protowire.Number, _ []byte, x uint64) {
			switch num {
			case 1:
				secs = x
			case 2:
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
// base64, padded or not) for its RetryInfo's delay.
func grpcDetails(v string) time.Duration {
	if v == "" {
		return 0
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return 0
	}
	_, d := rpcStatus(b)
	return d
}
