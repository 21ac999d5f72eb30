import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PresignedRequest } from '../../server/storage/object-store.ts';

/** Helpers for the object-store contract: talk to presigned URLs like a client would. */

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * Sends one request with node:http and exactly these headers, even ones fetch would refuse
 * (a Content-Length that differs from the body is how a broken client looks to the server).
 */
export function sendRaw(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<RawResponse> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** PUTs `body` to a presigned part URL with fetch, sending exactly the headers the store returned. */
export async function putPresigned(req: PresignedRequest, body: Buffer): Promise<Response> {
  const headers = { ...req.headers };
  // fetch computes Content-Length from the body itself; the signed value is what it will send.
  const signedLength = headers['content-length'];
  delete headers['content-length'];
  if (signedLength !== undefined && Number(signedLength) !== body.length) {
    throw new Error(`test bug: body of ${body.length} bytes for a URL signed for ${signedLength}`);
  }
  return fetch(req.url, { method: req.method, headers, body: Uint8Array.from(body) });
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

export function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function sha256Base64(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64');
}

/** S3's multipart ETag: hex MD5 of the concatenated binary part MD5s, "-", part count. */
export function multipartEtag(parts: Buffer[]): string {
  const md5s = parts.map((p) => createHash('md5').update(p).digest());
  return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
}

export async function readAll(stream: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
