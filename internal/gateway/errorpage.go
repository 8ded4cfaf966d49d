package gateway

import (
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// writeError answers the client for a failure gatehouse produced: the
// Gatehouse-Cause header and a short body in the form the client accepts.
func writeError(w http.ResponseWriter, r *http.Request, requestID string, e *cause.Error) {
	status := e.Status()
	if status == 0 || status == cause.StatusClientClosed {
		return
	}
	h := w.Header()
	h.Set("Gatehouse-Cause", string(e.Cause))
	h.Set("X-Request-Id", requestID)
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	accept := r.Header.Get("Accept")
	var body string
	switch {
	case strings.Contains(accept, "application/json"):
		h.Set("Content-Type", "application/json")
		body = jsonBody(requestID, e)
	case strings.Contains(accept, "text/html"):
		h.Set("Content-Type", "text/html; charset=utf-8")
		body = htmlBody(status, requestID, e)
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = textBody(status, requestID, e)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}

// jsonBody is the error page in JSON. Its strings go through the access
// log's encoder: a request id is the client's bytes, and must not make the
// page invalid JSON.
func jsonBody(requestID string, e *cause.Error) string {
	var b []byte
	b = append(b, `{"cause":`...)
	b = telemetry.AppendJSONString(b, string(e.Cause))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status()), 10)
	b = append(b, `,"instance":`...)
	b = telemetry.AppendJSONString(b, e.Instance)
	b = append(b, `,"request_id":`...)
	b = telemetry.AppendJSONString(b, requestID)
	b = append(b, `,"detail":`...)
	b = telemetry.AppendJSONString(b, e.Detail)
	b = append(b, `,"hint":`...)
	b = telemetry.AppendJSONString(b, e.HintText())
	b = append(b, "}\n"...)
	return string(b)
}

func textBody(status int, requestID string, e *cause.Error) string {
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(status) + " " + http.StatusText(status) + " (gatehouse: " + string(e.Cause) + ")\n")
	if e.Instance != "" {
		sb.WriteString("instance: " + e.Instance + "\n")
	}
	sb.WriteString("request id: " + requestID + "\n")
	if e.Detail != "" {
		sb.WriteString("what happened: " + e.Detail + "\n")
	}
	sb.WriteString("hint: " + e.HintText() + "\n")
	return sb.String()
}

func htmlBody(status int, requestID string, e *cause.Error) string {
	t := html.EscapeString
	return "<!doctype html><title>" + strconv.Itoa(status) + " " + t(http.StatusText(status)) + "</title>" +
		"<h1>" + strconv.Itoa(status) + " " + t(http.StatusText(status)) + "</h1>" +
		"<p><b>gatehouse: " + t(string(e.Cause)) + "</b></p><p>" + t(e.Detail) + "</p>" +
		"<p>" + t(e.HintText()) + "</p><p><small>instance " + t(e.Instance) + " · request id " + t(requestID) + "</small></p>\n"
}
