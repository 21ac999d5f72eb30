import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';

/**
 * A key prefix of one test run in the shared test bucket (S3_PREFIX for the coordinators it
 * starts), so the test can see exactly what it left behind in S3 and delete all of it after.
 */
export interface S3Prefix {
  prefix: string;
  client: S3Client;
  /** Keys of the multipart uploads still open under the prefix. */
  openMultipartKeys(): Promise<string[]>;
  /** Keys of the objects under the prefix. */
  objectKeys(): Promise<string[]>;
  /** Aborts every open multipart upload and deletes every object under the prefix. */
  cleanup(): Promise<void>;
}

export function s3Prefix(name: string): S3Prefix {
  const prefix = `reliability-${name}-${randomBytes(4).toString('hex')}/`;
  const Bucket = process.env.S3_BUCKET!;
  const client = new S3Client({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.S3_REGION ?? 'us-east-1',
    forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  });
  const multipart = async () => {
    const out: Array<{ key: string; uploadId: string }> = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await client.send(
        new ListMultipartUploadsCommand({ Bucket, Prefix: prefix, KeyMarker, UploadIdMarker }),
      );
      for (const u of page.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return out;
  };
  const objectKeys = async () => {
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
      for (const o of page.Contents ?? []) out.push(o.Key!);
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  };
  return {
    prefix,
    client,
    openMultipartKeys: async () => (await multipart()).map((u) => u.key),
    objectKeys,
    cleanup: async () => {
      for (const u of await multipart()) {
        await client
          .send(new AbortMultipartUploadCommand({ Bucket, Key: u.key, UploadId: u.uploadId }))
          .catch(() => {});
      }
      const keys = await objectKeys();
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(
          new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }),
        );
      }
      client.destroy();
    },
  };
}
