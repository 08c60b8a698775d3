package otlp

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the Collector's otlp exporter compresses with gzip by default
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DefaultGRPCAddr is the OTLP/gRPC port exporters use by default.
const DefaultGRPCAddr = ":4317"

// GRPCMaxRecvBytes bounds one gRPC export message (decompressed).
const GRPCMaxRecvBytes = 32 << 20

// Errors an Authorize function returns.
var (
	ErrUnauthenticated = errors.New("missing or invalid bearer token")
	ErrForbidden       = errors.New("the token does not grant the write scope")
)

// Authorize decides whether a gRPC export may write, given its
// authorization metadata ("Bearer <token>", or "" when absent). It
// returns nil, or an error wrapping ErrUnauthenticated or ErrForbidden;
// any other error refuses the export as unavailable.
type Authorize func(ctx context.Context, authorization string) error

// GRPCOptions configure the OTLP/gRPC server.
type GRPCOptions struct {
	// TLS serves over TLS when set.
	TLS *tls.Config
	// Authorize checks every export; nil leaves the server open.
	Authorize Authorize
}

// NewGRPCServer returns a gRPC server with the OTLP logs service of r
// registered. The caller serves it on a listener and stops it.
func (r *Receiver) NewGRPCServer(opts GRPCOptions) *grpc.Server {
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(GRPCMaxRecvBytes),
		// Exporters keep connections open; idle ones are closed, and a
		// client that stalls a handshake is cut off.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
		grpc.ConnectionTimeout(10 * time.Second),
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	if opts.Authorize != nil {
		sopts = append(sopts, grpc.UnaryInterceptor(authInterceptor(opts.Authorize)))
	}
	s := grpc.NewServer(sopts...)
	plogotlp.RegisterGRPCServer(s, &grpcLogs{r: r})
	return s
}

func authInterceptor(authorize Authorize) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var authorization string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				authorization = v[0]
			}
		}
		switch err := authorize(ctx, authorization); {
		case errors.Is(err, ErrUnauthenticated):
			return nil, status.Error(codes.Unauthenticated, "send a bearer token with the write scope: authorization: Bearer <token>")
		case errors.Is(err, ErrForbidden):
			return nil, status.Error(codes.PermissionDenied, "this token does not grant the write scope")
		case err != nil:
			return nil, status.Error(codes.Unavailable, "the hub could not check the token; retry later")
		}
		return handler(ctx, req)
	}
}

// grpcLogs is the OTLP logs service.
type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export implements the LogsService's Export: InvalidArgument for content
// that retrying cannot fix, Unavailable (which exporters retry) when the
// store could not take the reports.
func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	resp, err := g.r.export(ctx, req)
	switch {
	case err != nil && invalidInput(err):
		return resp, status.Error(codes.InvalidArgument, err.Error())
	case err != nil:
		g.r.log.Warn("OTLP/gRPC export not stored; the exporter will retry", "err", err)
		return resp, status.Error(codes.Unavailable, "the hub could not store the reports; retry later")
	}
	return resp, nil
}
