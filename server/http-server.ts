import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS } from './http/errors.ts';
import type { Logger } from './logger.ts';
import { loadTlsMaterial, secureContextOptions, secureServerOptions, type TlsFiles, type TlsMaterial } from './tls.ts';

type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ServerOptions {
  /** The request handler, e.g. `app.koa.callback()`. */
  handler: Handler;
  /** Serve HTTPS (HTTP/2 and HTTP/1.1 through ALPN) with these files; absent → plain HTTP/1.1. */
  tls?: { files: TlsFiles; material: TlsMaterial };
  /** Strict-Transport-Security max-age; 0 → no header. */
  hstsMaxAgeSeconds: number;
  /** Whether X-Forwarded-Proto is believed (TRUST_PROXY): then HSTS goes out when it says https. */
  trustProxy: boolean;
  logger: Logger;
}

/** The coordinator's listening socket: plain HTTP, or HTTPS with HTTP/2, certificate reload and draining. */
export interface CoordinatorServer {
  readonly server: http.Server | http2.Http2SecureServer;
  readonly secure: boolean;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Re-reads the TLS files; new handshakes use them, open connections keep theirs. Throws `ConfigError`. */
  reloadCertificates(): TlsMaterial;
  /**
   * Stops accepting connections and lets in-flight requests finish; after `timeoutMs` the
   * remaining connections are cut. Resolves with how it ended.
   */
  close(timeoutMs: number): Promise<'drained' | 'forced'>;
}

export function createCoordinatorServer(options: ServerOptions): CoordinatorServer {
  const secure = options.tls !== undefined;
  const hsts = options.hstsMaxAgeSeconds > 0 ? `max-age=${options.hstsMaxAgeSeconds}` : null;
  const handle: Handler = (req, res) => {
    // RFC 6797 §7.2: "An HSTS Host MUST NOT include the STS header field in HTTP responses conveyed
    // over non-secure transport", so over plain HTTP only when a trusted proxy says the client used TLS.
    if (hsts && (secure || (options.trustProxy && forwardedProto(req) === 'https'))) {
      res.setHeader('strict-transport-security', hsts);
    }
    options.handler(req, res);
  };
  return options.tls ? secureServer(options.tls, handle, options.logger) : plainServer(handle);
}

function plainServer(handle: Handler): CoordinatorServer {
  const server = http.createServer(handle as http.RequestListener);
  // Chunk bodies are large and clients may be slow: don't cut a healthy upload short.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  return {
    server,
    secure: false,
    listen: (port, host) => listen(server, port, host),
    reloadCertificates: () => {
      throw new Error('not serving HTTPS: there are no certificates to reload');
    },
    close: (timeoutMs) =>
      drain(server, timeoutMs, {
        graceful: () => server.closeIdleConnections(),
        forced: () => server.closeAllConnections(),
      }),
  };
}

function secureServer(
  tlsOptions: NonNullable<ServerOptions['tls']>,
  handle: Handler,
  logger: Logger,
): CoordinatorServer {
  const server = http2.createSecureServer(
    { ...secureServerOptions(tlsOptions.material), allowHTTP1: true },
    handle as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  // A failed handshake (untrusted certificate, missing client certificate, port scanner) is the
  // client's problem: Node destroys that socket; it is worth a debug line, never a crash.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    logger.debug(
      { err: { message: err.message, code: err.code }, remoteAddress: socket.remoteAddress },
      'TLS handshake failed',
    );
  });
  server.on('sessionError', (err: NodeJS.ErrnoException) => {
    logger.debug({ err: { message: err.message, code: err.code } }, 'HTTP/2 session error');
  });

  // http2's server has no closeIdleConnections(): track HTTP/2 sessions (closed with GOAWAY,
  // which lets open streams finish) and HTTP/1.1 sockets with their in-flight request count.
  let draining = false;
  const sessions = new Set<http2.ServerHttp2Session>();
  const http1 = new Map<Socket, number>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (draining) session.close();
  });
  server.on('secureConnection', (socket) => {
    if (socket.alpnProtocol === 'h2') return;
    http1.set(socket, 0);
    socket.once('close', () => http1.delete(socket));
  });
  server.on('request', (req, res) => {
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as Socket;
    if (!http1.has(socket)) return;
    http1.set(socket, (http1.get(socket) ?? 0) + 1);
    res.once('close', () => {
      if (!http1.has(socket)) return;
      const active = (http1.get(socket) ?? 1) - 1;
      http1.set(socket, active);
      if (draining && active === 0) socket.end();
    });
  });

  return {
    server,
    secure: true,
    listen: (port, host) => listen(server, port, host),
    reloadCertificates: () => {
      const material = loadTlsMaterial(tlsOptions.files);
      server.setSecureContext(secureContextOptions(material));
      return material;
    },
    close: (timeoutMs) => {
      draining = true;
      return drain(server, timeoutMs, {
        graceful: () => {
          for (const session of sessions) session.close();
          for (const [socket, active] of http1) if (active === 0) socket.end();
        },
        forced: () => {
          for (const session of sessions) session.destroy();
          for (const socket of http1.keys()) socket.destroy();
        },
      });
    },
  };
}

/**
 * Node's parser refused a request (garbage request line, bad header, headers too large or too
 * slow): answer with the API's error shape instead of Node's bare `400` (or a silent close),
 * then close the connection, whose framing can no longer be trusted.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset or a half-written response: there is no one left to answer, or no clean place to start.
  if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket).bytesWritten > 0) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'headers_too_large', ERRORS.headers_too_large.message]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', ERRORS.request_timeout.message]
        : [400, 'Bad Request', 'invalid_request', 'The request is not valid HTTP/1.1.'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
  );
}

async function listen(server: http.Server | http2.Http2SecureServer, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

async function drain(
  server: http.Server | http2.Http2SecureServer,
  timeoutMs: number,
  how: { graceful: () => void; forced: () => void },
): Promise<'drained' | 'forced'> {
  const closed = new Promise<'drained'>((resolve) => server.close(() => resolve('drained')));
  how.graceful();
  const timeout = new Promise<'timeout'>((r) => setTimeout(r, timeoutMs, 'timeout').unref());
  if ((await Promise.race([closed, timeout])) === 'drained') return 'drained';
  how.forced();
  return 'forced';
}

/** The first X-Forwarded-Proto value (the one the client-facing proxy set), lower-cased. */
function forwardedProto(req: http.IncomingMessage | http2.Http2ServerRequest): string {
  const value = req.headers['x-forwarded-proto'];
  return (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim().toLowerCase() ?? '';
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}
