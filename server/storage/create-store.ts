import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import { s3TrustedCas } from '../tls.ts';
import { DiskObjectStore } from './disk-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore } from './s3-object-store.ts';

/** The object store the configuration selects: S3 when S3_BUCKET is set, otherwise the local disk. */
export async function createObjectStore(config: Config, metrics?: Metrics): Promise<ObjectStore> {
  if (config.storeKind === 's3') {
    return new S3ObjectStore({
      bucket: config.s3Bucket!,
      region: config.s3Region,
      ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
      forcePathStyle: config.s3ForcePathStyle,
      prefix: config.s3Prefix,
      requestTimeoutMs: config.s3RequestTimeoutSeconds * 1000,
      ...s3Tls(config),
      onRequest: (operation, seconds, ok) =>
        metrics?.objectStoreRequestDuration.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds),
    });
  }
  const root = path.join(config.dataDir, 'objects');
  await fs.mkdir(root, { recursive: true });
  const secret = config.diskStoreSecret ?? (await readOrCreateSecret(path.join(config.dataDir, 'disk-store-secret')));
  return new DiskObjectStore({ root, publicBaseUrl: config.publicUrl, secret });
}

/** S3_CA_FILE and S3_TLS_VERIFY; neither set → the SDK's default agent (public roots + NODE_EXTRA_CA_CERTS). */
function s3Tls(config: Config): { tls?: { ca?: string[]; rejectUnauthorized?: boolean } } {
  if (!config.s3CaFile && config.s3TlsVerify) return {};
  return {
    tls: {
      ...(config.s3CaFile ? { ca: s3TrustedCas(config.s3CaFile) } : {}),
      rejectUnauthorized: config.s3TlsVerify,
    },
  };
}

/** The disk store's URL-signing key survives restarts, so URLs issued before a restart stay valid. */
async function readOrCreateSecret(file: string): Promise<string> {
  const existing = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (existing.length >= 32) return existing;
  const secret = randomBytes(32).toString('base64url');
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
