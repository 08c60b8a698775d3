package otlp

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// HTTPPath is where OTLP/HTTP exporters send logs.
const HTTPPath = "/v1/logs"

// MaxDecodedBytes bounds an OTLP/HTTP request body once decompressed, so
// that a small compressed body cannot take the hub's memory.
const MaxDecodedBytes = 64 << 20

// RetryAfterSeconds is what the receiver asks exporters to wait before
// retrying an export the store could not take.
const RetryAfterSeconds = 5

// The OTLP/HTTP content types.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// ServeHTTP implements OTLP/HTTP for logs (POST /v1/logs): a protobuf or
// JSON ExportLogsServiceRequest, optionally gzip- or deflate-compressed,
// answered with an ExportLogsServiceResponse in the same encoding. Errors
// are google.rpc.Status messages with the status codes OTLP exporters act
// on: 400 (do not retry), 413, 415, 503 with Retry-After (retry).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, contentJSON, http.StatusMethodNotAllowed, codes.Unimplemented, "OTLP/HTTP logs are sent with POST")
		return
	}
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mediaType != contentProtobuf && mediaType != contentJSON {
		writeStatus(w, contentJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument, fmt.Sprintf(
			"Content-Type %q is not supported: send %s or %s", req.Header.Get("Content-Type"), contentProtobuf, contentJSON))
		return
	}
	body, err := readBody(req)
	if err != nil {
		var tooBig *http.MaxBytesError
		var unsupported unsupportedEncoding
		switch {
		case errors.As(err, &tooBig):
			writeStatus(w, mediaType, http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf(
				"the request body is larger than %d bytes: send smaller batches (the batch processor's send_batch_max_size)", tooBig.Limit))
		case errors.As(err, &unsupported):
			writeStatus(w, mediaType, http.StatusUnsupportedMediaType, codes.InvalidArgument, err.Error())
		default:
			writeStatus(w, mediaType, http.StatusBadRequest, codes.InvalidArgument, "read the request body: "+err.Error())
		}
		return
	}
	exportReq := plogotlp.NewExportRequest()
	if mediaType == contentJSON {
		err = exportReq.UnmarshalJSON(body)
	} else {
		err = exportReq.UnmarshalProto(body)
	}
	if err != nil {
		writeStatus(w, mediaType, http.StatusBadRequest, codes.InvalidArgument, "the body is not an OTLP ExportLogsServiceRequest: "+err.Error())
		return
	}
	resp, err := r.export(req.Context(), exportReq)
	switch {
	case err != nil && invalidInput(err):
		writeStatus(w, mediaType, http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	case err != nil:
		r.log.Warn("OTLP/HTTP export not stored; the exporter will retry", "err", err)
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
		writeStatus(w, mediaType, http.StatusServiceUnavailable, codes.Unavailable, "the hub could not store the reports; retry later")
		return
	}
	var out []byte
	if mediaType == contentJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		writeStatus(w, mediaType, http.StatusInternalServerError, codes.Internal, "encode the response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

type unsupportedEncoding string

func (e unsupportedEncoding) Error() string {
	return fmt.Sprintf("Content-Encoding %q is not supported: send gzip, deflate or no compression", string(e))
}

// readBody reads the request body, decompressed, at most MaxDecodedBytes.
func readBody(req *http.Request) ([]byte, error) {
	var body io.Reader = req.Body
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		body = zr
	case "deflate":
		zr, err := zlib.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		body = zr
	default:
		return nil, unsupportedEncoding(enc)
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxDecodedBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxDecodedBytes {
		return nil, &http.MaxBytesError{Limit: MaxDecodedBytes}
	}
	return data, nil
}

// writeStatus answers with a google.rpc.Status, as OTLP/HTTP specifies for
// errors, in the request's encoding.
func writeStatus(w http.ResponseWriter, mediaType string, httpStatus int, code codes.Code, msg string) {
	st := status.New(code, msg).Proto()
	var out []byte
	var err error
	if mediaType == contentProtobuf {
		out, err = proto.Marshal(st)
	} else {
		mediaType = contentJSON
		out, err = protojson.Marshal(st)
	}
	if err != nil {
		out, mediaType = []byte(msg), "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(httpStatus)
	_, _ = w.Write(out)
}
