import { SignatureV4 } from '@smithy/signature-v4';
import type { PresignedRequest, PresignGetInput, PresignPartsInput } from './object-store.ts';

/**
 * Presigns S3 requests without the SDK's command pipeline. `getSignedUrl` resolves the
 * endpoint, serialises and runs a whole middleware stack per URL (~0.9 ms of CPU each);
 * a batch of 100 parts is then ~90 ms of event-loop time. Here the request is built by hand
 * exactly as the SDK would serialise it and signed by one shared `SignatureV4`, which also
 * caches the derived signing key. `test/storage/s3-object-store.test.ts` checks the URLs
 * against `getSignedUrl` character for character.
 */

type SignableRequest = Parameters<SignatureV4['presign']>[0];
type SignerOptions = ConstructorParameters<typeof SignatureV4>[0];

export interface S3Location {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** Path up to and including the bucket for path-style, the endpoint's base path otherwise. */
  pathPrefix: string;
}

interface PresignTarget {
  method: 'PUT' | 'GET';
  key: string;
  query: Record<string, string>;
  /** Lower-case header names. Each one is signed and must be sent exactly as given. */
  headers: Record<string, string>;
  expiresInSeconds: number;
  signingDate: Date;
}

/**
 * Where requests for `bucket` go, following the S3 endpoint rules the SDK applies: virtual-hosted
 * style (`bucket.host`) unless path style is forced, the bucket is not a DNS label ("Bucket names
 * must ... not contain periods" for virtual hosting over TLS, S3 bucket naming rules) or the custom
 * endpoint is an IP address.
 */
export function resolveLocation(opts: {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle?: boolean;
}): S3Location {
  const url = new URL(opts.endpoint ?? `https://s3.${opts.region}.${awsDomain(opts.region)}`);
  const protocol = url.protocol === 'http:' ? 'http:' : 'https:';
  const basePath = url.pathname.replace(/\/+$/, '');
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(url.hostname) || url.hostname.startsWith('[');
  const dnsLabel = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(opts.bucket);
  const port = url.port === '' ? undefined : Number(url.port);
  if (opts.forcePathStyle || !dnsLabel || isIp) {
    return { protocol, hostname: url.hostname, port, pathPrefix: `${basePath}/${escapeUri(opts.bucket)}` };
  }
  return { protocol, hostname: `${opts.bucket}.${url.hostname}`, port, pathPrefix: basePath };
}

function awsDomain(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
}

export class S3Presigner {
  readonly #signer: SignatureV4;
  readonly #location: S3Location;
  readonly #host: string;
  readonly #now: () => number;

  constructor(
    location: S3Location,
    signer: Pick<SignerOptions, 'credentials' | 'region' | 'sha256'>,
    now: () => number = Date.now,
  ) {
    this.#location = location;
    this.#host = location.port === undefined ? location.hostname : `${location.hostname}:${location.port}`;
    this.#now = now;
    // The options S3RequestPresigner uses: S3 keys are already escaped once in the path (no double
    // escaping), and the payload is never hashed into the URL.
    this.#signer = new SignatureV4({ ...signer, service: 's3', uriEscapePath: false, applyChecksum: false });
  }

  /** One UploadPart URL per part; `key` is the full object key. */
  async uploadParts(input: PresignPartsInput): Promise<PresignedRequest[]> {
    const { signingDate, expiresAt } = this.#window(input.expiresInSeconds);
    return Promise.all(
      input.parts.map(async (part) => {
        // Content-Length is signed, so S3 refuses any other body size (SignatureDoesNotMatch).
        const headers: Record<string, string> = { 'content-length': String(part.contentLength) };
        if (part.md5) headers['content-md5'] = part.md5;
        if (part.sha256) headers['x-amz-checksum-sha256'] = part.sha256;
        const url = await this.#presign({
          method: 'PUT',
          key: input.key,
          // `x-id` is what the SDK adds to every operation; S3 ignores it. Kept for identical URLs.
          query: { 'x-id': 'UploadPart', partNumber: String(part.partNumber), uploadId: input.uploadId },
          headers,
          expiresInSeconds: input.expiresInSeconds,
          signingDate,
        });
        return { url, method: 'PUT' as const, headers, expiresAt };
      }),
    );
  }

  /** A GetObject URL; `key` is the full object key. */
  async getObject(input: PresignGetInput): Promise<PresignedRequest> {
    const { signingDate, expiresAt } = this.#window(input.expiresInSeconds);
    const url = await this.#presign({
      method: 'GET',
      key: input.key,
      query: { 'x-id': 'GetObject' },
      headers: {},
      expiresInSeconds: input.expiresInSeconds,
      signingDate,
    });
    // Range stays an unsigned header: SigV4 only checks the headers listed in X-Amz-SignedHeaders.
    const headers: Record<string, string> = {};
    if (input.range) headers.range = `bytes=${input.range.start}-${input.range.end}`;
    return { url, method: 'GET', headers, expiresAt };
  }

  #window(expiresInSeconds: number): { signingDate: Date; expiresAt: Date } {
    // SigV4 query auth: "X-Amz-Expires ... Minimum value of 1. Maximum value of 604800" (seven days).
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > 604_800) {
      throw new RangeError(`expiresInSeconds must be an integer from 1 to 604800, got ${expiresInSeconds}`);
    }
    // X-Amz-Date has one-second precision; the URL expires X-Amz-Expires seconds after it.
    const signingDate = new Date(Math.floor(this.#now() / 1000) * 1000);
    return { signingDate, expiresAt: new Date(signingDate.getTime() + expiresInSeconds * 1000) };
  }

  /** A presigned URL for `target`, identical to what `getSignedUrl` returns for the same command. */
  async #presign(target: PresignTarget): Promise<string> {
    const request: SignableRequest = {
      method: target.method,
      protocol: this.#location.protocol,
      hostname: this.#location.hostname,
      port: this.#location.port,
      path: `${this.#location.pathPrefix}/${encodeKey(target.key)}`,
      query: { ...target.query },
      headers: {
        ...target.headers,
        host: this.#host,
        // S3RequestPresigner.prepareRequest: the payload of a presigned request is "UNSIGNED-PAYLOAD"
        // ("Signature Calculations for the Authorization Header ... UNSIGNED-PAYLOAD", S3 API reference).
        // As an x-amz-* header not listed as unhoistable it is moved into the query
        // (X-Amz-Content-Sha256=UNSIGNED-PAYLOAD), exactly as in SDK-made URLs.
        'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD',
      },
    };
    const signed = await this.#signer.presign(request, {
      signingDate: target.signingDate,
      expiresIn: target.expiresInSeconds,
      // S3RequestPresigner always excludes content-type from the signature.
      unsignableHeaders: new Set(['content-type']),
      // A signed x-amz-checksum-* header must stay a header: hoisted into the query S3 would not
      // check the body against it. (content-md5 is not x-amz-*, so it is never hoisted.)
      unhoistableHeaders: new Set(['content-md5', 'x-amz-checksum-sha256']),
    });
    return formatUrl(signed);
  }
}

/** Greedy `{Key+}` label: every segment escaped, `/` kept (SDK `resolvedPath`). */
function encodeKey(key: string): string {
  return key.split('/').map(extendedEncodeURIComponent).join('/');
}

function extendedEncodeURIComponent(s: string): string {
  return /^[\w.~-]+$/.test(s) ? s : escapeUri(s);
}

/** RFC 3986 unreserved characters only, as SigV4 requires ("URI-encode each ... except A-Z a-z 0-9 - . _ ~"). */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `@aws-sdk/core` formatUrl + buildQueryString: query keys sorted, keys and values escaped. */
function formatUrl(req: SignableRequest): string {
  const host = req.port ? `${req.hostname}:${req.port}` : req.hostname;
  const query = req.query ?? {};
  const qs = Object.keys(query)
    .sort()
    .map((k) => `${escapeUri(k)}=${escapeUri(String(query[k]))}`)
    .join('&');
  return `${req.protocol}//${host}${req.path}${qs ? `?${qs}` : ''}`;
}
