package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds what is read of a receiver's answer, head and body:
// OTLP's is a short message (a partial success, an error's text), and a
// receiver that sends more is not let fill the exporter's memory.
const maxAnswer = 64 << 10

// maxMessage bounds the receiver's word kept in an error.
const maxMessage = 256

const userAgent = "gatehouse-otlp"

// newTransport makes a sender's transport: proxy (nil for none), TLS
// (nil for plaintext) and the protocols it may speak.
func newTransport(d *dialed, proxy func(*http.Request) (*url.URL, error), tc *tls.Config, protocols *http.Protocols) *http.Transport {
	return &http.Transport{
		Proxy:                  proxy,
		DialContext:            d.dial,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    5 * time.Second,
		MaxIdleConns:           2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxAnswer,
		// The answer is read as it comes: no gzip asked for.
		DisableCompression: true,
		Protocols:          protocols,
		// A receiver gone quiet is found by a ping, not left to hold
		// the connection.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 10 * time.Second, MaxReceiveBufferPerStream: maxAnswer},
	}
}

// setHeaders puts the configured headers on req (framing ones were
// refused at New), then the protocol's own.
func setHeaders(req *http.Request, headers map[string]string, own ...string) {
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	for i := 0; i+1 < len(own); i += 2 {
		req.Header.Set(own[i], own[i+1])
	}
}

// httpSender posts to an OTLP/HTTP receiver.
type httpSender struct {
	url     string
	headers map[string]string
	gzip    bool
	dialed  dialed
	t       *http.Transport
	client  *http.Client
}

func newHTTPSender(u string, headers map[string]string, gz bool, tc *tls.Config, proxy func(*http.Request) (*url.URL, error)) *httpSender {
	s := &httpSender{url: u, headers: headers, gzip: gz}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	s.t = newTransport(&s.dialed, proxy, tc, p)
	// A client, for the redirects a receiver moved behind may answer,
	// within its origin only (checkRedirect).
	s.client = &http.Client{Transport: s.t, CheckRedirect: checkRedirect}
	return s
}

// checkRedirect follows a redirect that sends the spans again (307 and
// 308 keep the POST) to the same origin, three at most. Any other is
// not followed, and its 3xx is the export's refusal: a 301, 302 or 303
// would make the POST a GET that loses the spans and answers 200, and
// another origin (another host, port or scheme) would be given the
// configured headers, API keys among them.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) > 3 || req.Method != http.MethodPost || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

func (s *httpSender) send(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &protocolError{err: err}
	}
	setHeaders(req, s.headers, "Content-Type", "application/x-protobuf")
	if s.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("otlp: http: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		// Taken: an answer cut short, or not OTLP's, is no reason to
		// send the spans again.
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/x-protobuf" {
			return nil
		}
		return partial(answer)
	}
	return &StatusError{Protocol: HTTP, HTTPStatus: resp.StatusCode,
		Message: answerMessage(resp.Header.Get("Content-Type"), answer), RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
}

func (s *httpSender) close() { s.t.CloseIdleConnections(); s.dialed.closeAll() }

// cut keeps a receiver's message printable and short.
func cut(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "…"
	}
	return s
}

// parseRetryAfter reads Retry-After, seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(min(n, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, min(time.Until(t), time.Hour))
	}
	return 0
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// grpcSender calls TraceService/Export on an OTLP/gRPC receiver: one
// unary call is a POST over HTTP/2 whose body is the message behind a
// 5-byte prefix, and whose status comes in the trailers.
type grpcSender struct {
	url     string
	headers map[string]string
	gzip    bool
	dialed  dialed
	t       *http.Transport
}

const exportPath = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func newGRPCSender(host string, headers map[string]string, gz bool, tc *tls.Config, proxy func(*http.Request) (*url.URL, error)) *grpcSender {
	s := &grpcSender{headers: map[string]string{}, gzip: gz}
	for k, v := range headers {
		// Binary metadata travels in base64, as gRPC's libraries send
		// and expect it.
		if strings.HasSuffix(k, "-bin") {
			v = base64.RawStdEncoding.EncodeToString([]byte(v))
		}
		s.headers[k] = v
	}
	p := new(http.Protocols)
	if tc != nil {
		s.url = "https://" + host + exportPath
		p.SetHTTP2(true)
	} else {
		// Plaintext HTTP/2 with prior knowledge, as gRPC's insecure
		// channels speak it; no proxy then, as one would take HTTP/1.
		s.url = "http://" + host + exportPath
		p.SetUnencryptedHTTP2(true)
		proxy = nil
	}
	s.t = newTransport(&s.dialed, proxy, tc, p)
	return s
}

func (s *grpcSender) send(ctx context.Context, body []byte) error {
	flag := byte(0)
	if s.gzip {
		flag = 1
	}
	frame := make([]byte, 5+len(body))
	frame[0] = flag
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(body)))
	copy(frame[5:], body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(frame))
	if err != nil {
		return &protocolError{err: err}
	}
	req.ContentLength = int64(len(frame))
	setHeaders(req, s.headers, "Content-Type", "application/grpc", "Te", "trailers")
	if s.gzip {
		req.Header.Set("Grpc-Encoding", "gzip")
	}
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", grpcTimeout(time.Until(dl)))
	}
	resp, err := s.t.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("otlp: grpc: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Protocol: GRPC, HTTPStatus: resp.StatusCode, GRPCCode: grpcCodeOfHTTP(resp.StatusCode)}
	}
	if ct := resp.Header.Get("Content-Type"); !isGRPCType(ct) {
		return &protocolError{err: fmt.Errorf("grpc: answer of content type %q", ct)}
	}
	// The status is in the trailers, there once the body is read to
	// its end.
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("otlp: grpc: reading the answer: %w", err)
	}
	if len(answer) > maxAnswer {
		return &protocolError{err: fmt.Errorf("grpc: answer longer than %d bytes", maxAnswer)}
	}
	h := resp.Trailer
	if h.Get("Grpc-Status") == "" { // a trailers-only answer
		h = resp.Header
	}
	st := h.Get("Grpc-Status")
	code, err := strconv.Atoi(st)
	if err != nil || code < 0 {
		return &protocolError{err: fmt.Errorf("grpc: answer with grpc-status %q", st)}
	}
	if code > grpcUnauthenticated {
		code = grpcUnknown
	}
	if code == 0 {
		return partial(grpcMessage(answer, resp.Header.Get("Grpc-Encoding")))
	}
	msg := h.Get("Grpc-Message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	return &StatusError{Protocol: GRPC, HTTPStatus: resp.StatusCode, GRPCCode: code, Message: cut(msg),
		RetryAfter: grpcDetails(h.Get("Grpc-Status-Details-Bin"))}
}

func (s *grpcSender) close() { s.t.CloseIdleConnections(); s.dialed.closeAll() }

// isGRPCType says whether a content type is gRPC's: application/grpc,
// alone or with a +codec or parameters (not grpc-web).
func isGRPCType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcMessage is the answer's message behind its 5-byte prefix,
// decompressed when it is gzip; nil when it is not one.
func grpcMessage(b []byte, encoding string) []byte {
	if len(b) < 5 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
		return nil
	}
	msg := b[5:]
	if b[0] == 0 {
		return msg
	}
	if encoding != "gzip" {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(msg))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxAnswer))
	if err != nil {
		return nil
	}
	return out
}

// FramingHeader says whether name is a header that frames an export
// (HTTP's, or a gRPC call's), which a configured one would change or
// break: such headers are refused.
func FramingHeader(name string) bool {
	switch k := strings.ToLower(name); k {
	case "content-type", "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
		"proxy-connection", "te", "trailer", "upgrade", "host":
		return true
	default:
		return strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, ":")
	}
}

// grpcTimeout writes a grpc-timeout value: at most eight digits and a
// unit.
func grpcTimeout(d time.Duration) string {
	ms := max(1, d.Milliseconds())
	if ms < 1e8 {
		return strconv.FormatInt(ms, 10) + "m"
	}
	return strconv.FormatInt(min(int64(d/time.Second), 1e8-1), 10) + "S"
}

// gRPC's status codes that matter here.
const (
	grpcCanceled          = 1
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcAborted           = 10
	grpcOutOfRange        = 11
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcDataLoss          = 15
	grpcUnauthenticated   = 16
)

func grpcCodeName(c int) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return "code " + strconv.Itoa(c)
}

// grpcCodeOfHTTP is the status gRPC gives an answer that is not HTTP
// 200 (gRPC's http-grpc-status-mapping).
func grpcCodeOfHTTP(status int) int {
	switch status {
	case 400:
		return grpcInternal
	case 401:
		return grpcUnauthenticated
	case 403:
		return grpcPermissionDenied
	case 404:
		return grpcUnimplemented
	case 429, 502, 503, 504:
		return grpcUnavailable
	}
	return grpcUnknown
}
