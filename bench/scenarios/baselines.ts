/**
 * What Conveyor is compared with, straight to the same S3: `@aws-sdk/lib-storage` `Upload`, one
 * `GetObject` stream, and the ceilings — parallel presigned PUTs / ranged GETs with no coordinator
 * and no hashing, from one buffer per worker (the most this S3 takes from one Node process).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type Figure, figure, httpRequest, parallel } from '../lib/measure.ts';
import type { Bench } from '../lib/stack.ts';

export async function libStorageUpload(b: Bench, file: string, size: number, c: number, key: string): Promise<Figure> {
  const t0 = performance.now();
  const fh = await fs.open(file);
  try {
    const up = new Upload({
      client: b.s3,
      params: { Bucket: b.bucket, Key: key, Body: fh.createReadStream({ highWaterMark: 1024 * 1024 }) },
      partSize: b.part,
      queueSize: c,
      leavePartsOnError: false,
    });
    await up.done();
  } finally {
    await fh.close().catch(() => {});
  }
  return figure(size, (performance.now() - t0) / 1000);
}

/** Presigned UploadPart PUTs from positional reads, `c` at a time: no coordinator, no hashing. */
export async function ceilingUpload(b: Bench, file: string, size: number, c: number, key: string): Promise<Figure> {
  const part = b.part;
  const agent = new http.Agent({ keepAlive: true, maxSockets: c + 2 });
  const t0 = performance.now();
  const { UploadId } = await b.s3.send(new CreateMultipartUploadCommand({ Bucket: b.bucket, Key: key }));
  const parts = Math.ceil(size / part);
  const etags: string[] = [];
  const fh = await fs.open(file);
  const free = Array.from({ length: Math.min(c, parts) }, () => Buffer.allocUnsafe(part));
  try {
    await parallel(parts, c, async (i) => {
      const buf = free.pop()!;
      try {
        const n = Math.min(part, size - i * part);
        await fh.read(buf, 0, n, i * part);
        const url = await getSignedUrl(
          b.s3,
          new UploadPartCommand({ Bucket: b.bucket, Key: key, UploadId, PartNumber: i + 1 }),
          { expiresIn: 3600 },
        );
        const res = await httpRequest(agent, url, 'PUT', { 'content-length': String(n) }, buf.subarray(0, n));
        if (res.status !== 200) throw new Error(`ceiling PUT part ${i + 1}: ${res.status} ${res.text}`);
        etags[i] = String(res.headers.etag);
      } finally {
        free.push(buf);
      }
    });
    await b.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: b.bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (err) {
    await b.s3.send(new AbortMultipartUploadCommand({ Bucket: b.bucket, Key: key, UploadId })).catch(() => {});
    throw err;
  } finally {
    await fh.close();
    agent.destroy();
  }
  return figure(size, (performance.now() - t0) / 1000);
}

/** Many files: presigned PutObject of each whole file (they are one part each), `c` at a time. */
export async function ceilingPutFiles(b: Bench, files: string[], fileSize: number, c: number, keys: string[]) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: c + 2 });
  const t0 = performance.now();
  try {
    await parallel(files.length, c, async (i) => {
      const buf = await fs.readFile(files[i]!);
      const url = await getSignedUrl(b.s3, new PutObjectCommand({ Bucket: b.bucket, Key: keys[i]! }), {
        expiresIn: 3600,
      });
      const res = await httpRequest(agent, url, 'PUT', { 'content-length': String(buf.length) }, buf);
      if (res.status !== 200) throw new Error(`ceiling PUT ${i}: ${res.status} ${res.text}`);
    });
  } finally {
    agent.destroy();
  }
  return figure(files.length * fileSize, (performance.now() - t0) / 1000);
}

export async function getObjectDownload(b: Bench, key: string, size: number, out: string): Promise<Figure> {
  const t0 = performance.now();
  const r = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
  await pipeline(r.Body as NodeJS.ReadableStream, (await fs.open(out, 'w')).createWriteStream());
  return figure(size, (performance.now() - t0) / 1000);
}

/** Presigned ranged GETs, one buffer per worker, positional writes: no coordinator, no hashing. */
export async function ceilingDownload(b: Bench, key: string, size: number, c: number, out: string): Promise<Figure> {
  const part = b.part;
  const agent = new http.Agent({ keepAlive: true, maxSockets: c + 2 });
  const t0 = performance.now();
  const url = await getSignedUrl(b.s3, new GetObjectCommand({ Bucket: b.bucket, Key: key }), { expiresIn: 3600 });
  const parts = Math.ceil(size / part);
  const fh = await fs.open(out, 'w');
  const free = Array.from({ length: Math.min(c, parts) }, () => Buffer.allocUnsafe(part));
  try {
    await fh.truncate(size);
    await parallel(parts, c, async (i) => {
      const buf = free.pop()!;
      try {
        const start = i * part;
        const n = Math.min(part, size - start);
        const res = await httpRequest(agent, url, 'GET', { range: `bytes=${start}-${start + n - 1}` }, undefined, buf);
        if (res.status !== 206 || res.length !== n)
          throw new Error(`ceiling GET part ${i}: ${res.status} ${res.length}`);
        await fh.write(buf, 0, n, start);
      } finally {
        free.push(buf);
      }
    });
  } finally {
    await fh.close();
    agent.destroy();
  }
  return figure(size, (performance.now() - t0) / 1000);
}

/** `GET /v1/files/{id}/content` through the coordinator into a file. */
export async function serverStreamDownload(b: Bench, fileId: string, size: number, out: string): Promise<Figure> {
  const t0 = performance.now();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http
      .get(
        `${b.coordinator.base}/v1/files/${fileId}/content`,
        { headers: { authorization: `Bearer ${b.coordinator.apiKey}` } },
        resolve,
      )
      .on('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`streaming endpoint: ${res.statusCode}`);
  await pipeline(res, (await fs.open(out, 'w')).createWriteStream());
  return figure(size, (performance.now() - t0) / 1000);
}
