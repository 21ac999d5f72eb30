import type { PresignedRequest } from '../../server/storage/object-store.ts';
import { md5Base64, putPresigned, sha256Base64 } from '../storage/object-store-http.ts';

/** A plain-HTTP client of the REST API, as a caller without the SDK would write it. */

export interface ApiResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected loosely
  body: any;
}

export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

export interface InitResult {
  uploadId: string;
  chunkSize: number;
  totalChunks: number;
}

export async function initUpload(
  baseUrl: string,
  key: string,
  file: Buffer,
  extra: Record<string, unknown> = {},
): Promise<InitResult> {
  const res = await callApi(baseUrl, 'POST', '/v1/uploads', key, {
    fileName: 'data.bin',
    fileSize: file.length,
    chunkSize: 5 * 1024 * 1024,
    ...extra,
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return res.body;
}

export function chunkOf(file: Buffer, chunkSize: number, i: number): Buffer {
  return file.subarray(i * chunkSize, Math.min(file.length, (i + 1) * chunkSize));
}

/** Presigns, PUTs (plain fetch to the presigned URLs) and optionally reports the given chunks. */
export async function sendChunks(
  baseUrl: string,
  key: string,
  upload: { uploadId: string; chunkSize: number },
  file: Buffer,
  indexes: number[],
  opts: { report?: boolean; sha256?: boolean } = {},
): Promise<void> {
  const { uploadId, chunkSize } = upload;
  const presign = await callApi(baseUrl, 'POST', `/v1/uploads/${uploadId}/chunks/presign`, key, {
    chunks: indexes.map((i) => {
      const bytes = chunkOf(file, chunkSize, i);
      return { chunkIndex: i, md5: md5Base64(bytes), ...(opts.sha256 ? { sha256: sha256Base64(bytes) } : {}) };
    }),
  });
  if (presign.status !== 200) throw new Error(JSON.stringify(presign.body));
  for (const c of presign.body.chunks as Array<PresignedRequest & { chunkIndex: number }>) {
    const bytes = chunkOf(file, chunkSize, c.chunkIndex);
    const put = await putPresigned({ ...c, expiresAt: new Date() }, bytes);
    if (put.status !== 200) throw new Error(`PUT ${put.status}: ${await put.text()}`);
    if (opts.report !== false) {
      const rep = await callApi(baseUrl, 'PATCH', `/v1/uploads/${uploadId}/chunks/${c.chunkIndex}`, key, {
        etag: put.headers.get('etag'),
        size: bytes.length,
        attempts: 1,
        ...(opts.sha256 ? { sha256: sha256Base64(bytes) } : {}),
      });
      if (rep.status !== 204) throw new Error(JSON.stringify(rep.body));
    }
  }
}

/** Uploads a whole file through the API and completes it; returns the completion body. */
export async function uploadFile(baseUrl: string, key: string, file: Buffer, extra: Record<string, unknown> = {}) {
  const u = await initUpload(baseUrl, key, file, extra);
  const all = Array.from({ length: u.totalChunks }, (_, i) => i);
  for (let i = 0; i < all.length; i += 4)
    await sendChunks(baseUrl, key, u, file, all.slice(i, i + 4), { sha256: true });
  const done = await callApi(baseUrl, 'POST', `/v1/uploads/${u.uploadId}/complete`, key);
  if (done.status !== 200) throw new Error(JSON.stringify(done.body));
  return { ...u, ...(done.body as { fileId: string; etag: string; size: number }) };
}
