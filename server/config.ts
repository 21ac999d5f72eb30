import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/**
 * Thrown by `loadConfig` for a bad value; the message is one line naming the variable and the
 * value (secrets — API keys, passwords — are masked: they must never reach a log).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    readonly value: string,
    reason: string,
  ) {
    super(`Invalid configuration: ${variable}=${JSON.stringify(value)}: ${reason}`);
  }
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, `expected a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' }))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const url = (protocols: RegExp, what: string) =>
  z
    .string()
    .trim()
    .refine((v) => URL.canParse(v) && protocols.test(new URL(v).protocol), `expected ${what}`);

const apiKeys = z
  .string()
  .trim()
  .transform((v) => v.split(',').filter((s) => s.trim() !== ''))
  .pipe(
    z.array(
      z
        .string()
        .trim()
        .regex(/^[A-Za-z0-9_.@-]{1,128}:\S{16,512}$/, 'expected principal:key pairs, keys of at least 16 characters')
        .transform((pair) => {
          const i = pair.indexOf(':');
          return { principal: pair.slice(0, i), key: pair.slice(i + 1) };
        }),
    ),
  );

/**
 * Every setting, its environment variable, its default and its meaning. The names
 * in API.md are fixed; the others are Conveyor's own additions.
 */
const SPEC = {
  /** TCP port the coordinator listens on. @default 8080 */
  port: { env: 'PORT', schema: int(0, 65535), default: '8080' },
  /** Address to bind. Loopback by default: the embedded mode is for local use. @default 127.0.0.1 */
  host: { env: 'HOST', schema: z.string().trim().min(1), default: '127.0.0.1' },
  /**
   * PEM certificate (chain) to serve HTTPS with, HTTP/1.1 and HTTP/2 (ALPN); needs TLS_KEY_FILE.
   * Re-read on SIGHUP. Absent → plain HTTP.
   */
  tlsCertFile: { env: 'TLS_CERT_FILE', schema: z.string().trim().min(1), default: undefined },
  /** PEM private key of TLS_CERT_FILE (unencrypted). */
  tlsKeyFile: { env: 'TLS_KEY_FILE', schema: z.string().trim().min(1), default: undefined },
  /** PEM CA bundle: when set, clients must present a certificate it issued (mutual TLS). */
  tlsCaFile: { env: 'TLS_CA_FILE', schema: z.string().trim().min(1), default: undefined },
  /**
   * Behind a TLS-terminating proxy or load balancer: honour X-Forwarded-For/-Proto/-Host
   * (never otherwise: any client could forge them). @default false
   */
  trustProxy: { env: 'TRUST_PROXY', schema: bool, default: 'false' },
  /** Strict-Transport-Security max-age sent over HTTPS, in seconds; 0 sends none. @default 31536000 (one year) */
  hstsMaxAgeSeconds: { env: 'HSTS_MAX_AGE_SECONDS', schema: int(0, 63_072_000), default: '31536000' },
  /** Base URL clients use to reach this coordinator (disk-store URLs point here). @default http(s)://HOST:PORT */
  publicUrl: { env: 'PUBLIC_URL', schema: url(/^https?:$/, 'an http(s) URL'), default: undefined },
  /** Where embedded PostgreSQL and the local-disk object store keep their data. @default ./.data */
  dataDir: { env: 'DATA_DIR', schema: z.string().trim().min(1), default: './.data' },
  /** PostgreSQL connection string; absent → an embedded PostgreSQL under DATA_DIR/postgres. */
  databaseUrl: {
    env: 'DATABASE_URL',
    schema: url(/^postgres(ql)?:$/, 'a postgres:// URL'),
    default: undefined,
    redact: (v: string) => v.replace(/(:\/\/[^:/@]*:)[^@]*@/, '$1***@'),
  },
  /** Connections in the coordinator's PostgreSQL pool. @default 10 */
  databasePoolSize: { env: 'DATABASE_POOL_SIZE', schema: int(1, 1000), default: '10' },
  /** S3 endpoint (Ceph RGW, MinIO, LocalStack…); absent with S3_BUCKET set → AWS. */
  s3Endpoint: { env: 'S3_ENDPOINT', schema: url(/^https?:$/, 'an http(s) URL'), default: undefined },
  /** S3 region. @default us-east-1 */
  s3Region: { env: 'S3_REGION', schema: z.string().trim().min(1), default: 'us-east-1' },
  /** Bucket; with neither S3_BUCKET nor S3_ENDPOINT the local-disk store is used. */
  s3Bucket: {
    env: 'S3_BUCKET',
    schema: z
      .string()
      .trim()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name'),
    default: undefined,
  },
  /** Path-style addressing (bucket in the path), needed by most S3-compatible servers. @default false */
  s3ForcePathStyle: { env: 'S3_FORCE_PATH_STYLE', schema: bool, default: 'false' },
  /**
   * PEM file of a private CA trusted for the S3 endpoint, on top of the public roots (and
   * NODE_EXTRA_CA_CERTS). Absent → the public roots only.
   */
  s3CaFile: { env: 'S3_CA_FILE', schema: z.string().trim().min(1), default: undefined },
  /**
   * Verify the S3 endpoint's certificate. `false` accepts any certificate (a warning is logged
   * at start-up): for a throwaway test endpoint only, never in production. @default true
   */
  s3TlsVerify: { env: 'S3_TLS_VERIFY', schema: bool, default: 'true' },
  /**
   * Longest wait for the object store's answer to one control call (create, list parts, head,
   * abort, delete; a GET until its headers), after which the request answers `503
   * object_store_unavailable` instead of hanging. Relayed part uploads and the final
   * CompleteMultipartUpload (minutes for large objects on S3) are not timed. @default 20
   */
  s3RequestTimeoutSeconds: { env: 'S3_REQUEST_TIMEOUT_SECONDS', schema: int(1, 3600), default: '20' },
  /** Prefix of every object key Conveyor writes. @default "" */
  s3Prefix: { env: 'S3_PREFIX', schema: z.string().trim().max(512), default: '' },
  /** `principal:key,principal:key`: principals and keys seeded at start-up (stored hashed). */
  apiKeys: { env: 'API_KEYS', schema: apiKeys, default: '', redact: (v: string) => v.replace(/:[^,]*/g, ':***') },
  /**
   * `principal:key,…` like API_KEYS, but the keys may also call /v1/admin/* (audit log, keys).
   * Keys made with `npm run admin -- keys create <principal> --admin` need no variable.
   */
  adminApiKeys: {
    env: 'ADMIN_API_KEYS',
    schema: apiKeys,
    default: '',
    redact: (v: string) => v.replace(/:[^,]*/g, ':***'),
  },
  /** Default quota: uploads a principal may have open at once (not yet completed or aborted); 0 = unlimited. @default 0 */
  quotaMaxConcurrentUploads: { env: 'QUOTA_MAX_CONCURRENT_UPLOADS', schema: int(0), default: '0' },
  /** Default quota: declared bytes of a principal's open uploads; 0 = unlimited. @default 0 */
  quotaMaxBytesInFlight: { env: 'QUOTA_MAX_BYTES_IN_FLIGHT', schema: int(0), default: '0' },
  /** Default quota: bytes of a principal's completed files plus open uploads; 0 = unlimited. @default 0 */
  quotaMaxTotalBytes: { env: 'QUOTA_MAX_TOTAL_BYTES', schema: int(0), default: '0' },
  /**
   * How a whole-file `checksumSha256` declared at init is checked before `COMPLETED`: `read-back`
   * reads the object back once and hashes it (the declared SHA-256 is then proven); `parts` accepts
   * it when every part's ETag in the store is the MD5 the client declared for that chunk (signed
   * into its URL as Content-MD5, so the store checked the bytes), skipping the read (S3 CPU, time
   * and GET traffic for large files), and reads back whenever that cannot be shown (a chunk with no
   * MD5, relayed chunks, SSE-KMS ETags). @default read-back
   */
  wholeFileVerify: {
    env: 'WHOLE_FILE_VERIFY',
    schema: z.enum(['read-back', 'parts'], { error: 'expected read-back or parts' }),
    default: 'read-back',
  },
  /**
   * Server-side encryption of uploads that do not ask for one: `none` (the bucket's default),
   * `SSE-S3` or `SSE-KMS` (with SSE_KMS_KEY_ID). @default none
   */
  sseDefault: {
    env: 'SSE_DEFAULT',
    schema: z.enum(['none', 'SSE-S3', 'SSE-KMS'], { error: 'expected none, SSE-S3 or SSE-KMS' }),
    default: 'none',
  },
  /** KMS key id or ARN for SSE_DEFAULT=SSE-KMS (absent → the AWS-managed aws/s3 key; Ceph RGW requires one). */
  sseKmsKeyId: { env: 'SSE_KMS_KEY_ID', schema: z.string().trim().min(1).max(2048), default: undefined },
  /** S3 Bucket Keys for SSE_DEFAULT=SSE-KMS (fewer KMS calls). @default false */
  sseBucketKey: { env: 'SSE_BUCKET_KEY', schema: bool, default: 'false' },
  /** Largest file accepted, in bytes (S3's object limit is 5 TiB). @default 5 TiB */
  maxFileSize: { env: 'MAX_FILE_SIZE', schema: int(0), default: String(5 * TiB) },
  /** Chunk size picked when the client asks for none, in bytes (grown when needed to stay ≤ 10,000 chunks). @default 8 MiB */
  defaultChunkSize: { env: 'DEFAULT_CHUNK_SIZE', schema: int(5 * MiB, 5 * GiB), default: String(8 * MiB) },
  /** Attempts after the first for relay writes to the object store. @default 5 */
  maxRetries: { env: 'MAX_RETRIES', schema: int(0, 100), default: '5' },
  /** Presigned-but-unreported chunks one upload may hold. @default 32 */
  maxInflightPerUpload: { env: 'MAX_INFLIGHT_PER_UPLOAD', schema: int(1), default: '32' },
  /** …one principal may hold across its uploads. @default 256 */
  maxInflightPerPrincipal: { env: 'MAX_INFLIGHT_PER_PRINCIPAL', schema: int(1), default: '256' },
  /** …the whole coordinator may hold. @default 4096 */
  maxInflightGlobal: { env: 'MAX_INFLIGHT_GLOBAL', schema: int(1), default: '4096' },
  /** Redis URL to share limits across replicas; absent → limits are per process. */
  redisUrl: { env: 'REDIS_URL', schema: url(/^rediss?:$/, 'a redis:// URL'), default: undefined },
  /** Prefix of Conveyor's Redis keys; replicas that share limits use the same one. @default conveyor */
  redisKeyPrefix: {
    env: 'REDIS_KEY_PREFIX',
    schema: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected 1-64 of A-Z a-z 0-9 _ . : -'),
    default: 'conveyor',
  },
  /**
   * Sustained /v1 requests per second per principal (token bucket). A direct upload costs about
   * one report per chunk plus a presign per batch: 200/s leaves a principal ~1.6 GB/s of 8 MiB chunks.
   * @default 200
   */
  rateLimitPerSecond: { env: 'RATE_LIMIT_PER_SECOND', schema: int(1, 1_000_000), default: '200' },
  /** Requests a principal may burst after being idle. @default 400 */
  rateLimitBurst: { env: 'RATE_LIMIT_BURST', schema: int(1, 1_000_000), default: '400' },
  /** Tasks the server queue holds before answering 429. @default 1000 */
  taskQueueSize: { env: 'TASK_QUEUE_SIZE', schema: int(1), default: '1000' },
  /** Fewest object-store workers. @default 2 */
  minWorkers: { env: 'MIN_WORKERS', schema: int(1, 1024), default: '2' },
  /** Most object-store workers. @default 16 */
  maxWorkers: { env: 'MAX_WORKERS', schema: int(1, 1024), default: '16' },
  /** Memory for relayed chunks awaiting upload; chunks beyond it are spooled to DATA_DIR/spool. @default 256 MiB */
  relayMemoryBudget: { env: 'RELAY_MEMORY_BUDGET', schema: int(0), default: String(256 * MiB) },
  /** Threads that verify relayed chunks' Content-MD5; 0: the request thread. @default 1 per core, at most 4 */
  relayHashThreads: {
    env: 'RELAY_HASH_THREADS',
    schema: int(0, 64),
    default: String(Math.max(1, Math.min(4, os.availableParallelism()))),
  },
  /** Ranged GETs in flight per download streamed through the coordinator. @default 4 */
  downloadPrefetchWindow: { env: 'DOWNLOAD_PREFETCH_WINDOW', schema: int(1, 64), default: '4' },
  /** Bytes one of those ranged GETs fetches (memory per stream ≈ (window + 1) × this). @default 8 MiB */
  downloadSegmentSize: { env: 'DOWNLOAD_SEGMENT_SIZE', schema: int(64 * 1024, 64 * MiB), default: String(8 * MiB) },
  /** Lifetime of presigned URLs, in seconds (S3 allows at most 7 days). @default 900 */
  presignTtlSeconds: { env: 'PRESIGN_TTL_SECONDS', schema: int(1, 604800), default: '900' },
  /** An upload not completed within this many hours is aborted by the sweeper. @default 24 */
  uploadTtlHours: { env: 'UPLOAD_TTL_HOURS', schema: int(1, 24 * 365), default: '24' },
  /** pino log level. @default info */
  logLevel: {
    env: 'LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'expected fatal, error, warn, info, debug, trace or silent',
    }),
    default: 'info',
  },
  /** Seconds a graceful shutdown waits for in-flight requests. @default 30 */
  shutdownTimeoutSeconds: { env: 'SHUTDOWN_TIMEOUT_SECONDS', schema: int(0, 3600), default: '30' },
  /** HMAC secret for the disk store's URLs; absent → generated once and kept in DATA_DIR. */
  diskStoreSecret: {
    env: 'DISK_STORE_SECRET',
    schema: z.string().min(32, 'must be at least 32 characters'),
    default: undefined,
    redact: (v: string) => `*** (${v.length} characters)`,
  },
} as const;

type Spec = typeof SPEC;
type Parsed<K extends keyof Spec> = z.output<Spec[K]['schema']>;

/** The validated configuration: one field per setting in `SPEC`. */
export type Config = {
  [K in keyof Spec]: Spec[K]['default'] extends string ? Parsed<K> : Parsed<K> | undefined;
} & {
  /** Absolute DATA_DIR. */
  dataDir: string;
  /** PUBLIC_URL, or derived from HOST and PORT. */
  publicUrl: string;
  /** Which object store the settings select. */
  storeKind: 'disk' | 's3';
};

/** Reads and validates the configuration; throws `ConfigError` on the first bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(SPEC)) {
    const raw = env[spec.env];
    const value = raw === undefined || raw === '' ? spec.default : raw;
    if (value === undefined) continue;
    const result = (spec.schema as z.ZodType).safeParse(value);
    if (!result.success) {
      const shown = 'redact' in spec ? spec.redact(value) : value;
      throw new ConfigError(spec.env, shown, result.error.issues[0]?.message ?? 'invalid value');
    }
    out[field] = result.data;
  }
  const cfg = out as Config;
  if (cfg.minWorkers > cfg.maxWorkers) {
    throw new ConfigError('MIN_WORKERS', String(cfg.minWorkers), `must not exceed MAX_WORKERS (${cfg.maxWorkers})`);
  }
  if (Boolean(cfg.tlsCertFile) !== Boolean(cfg.tlsKeyFile)) {
    const [set, missing] = cfg.tlsCertFile ? ['TLS_CERT_FILE', 'TLS_KEY_FILE'] : ['TLS_KEY_FILE', 'TLS_CERT_FILE'];
    throw new ConfigError(missing, '', `is required when ${set} is set`);
  }
  if (cfg.tlsCaFile && !cfg.tlsCertFile) {
    throw new ConfigError(
      'TLS_CA_FILE',
      cfg.tlsCaFile,
      'needs TLS_CERT_FILE and TLS_KEY_FILE (client certificates need HTTPS)',
    );
  }
  if ((cfg.sseKmsKeyId || cfg.sseBucketKey) && cfg.sseDefault !== 'SSE-KMS') {
    const name = cfg.sseKmsKeyId ? 'SSE_KMS_KEY_ID' : 'SSE_BUCKET_KEY';
    throw new ConfigError(name, String(cfg.sseKmsKeyId ?? cfg.sseBucketKey), 'only applies with SSE_DEFAULT=SSE-KMS');
  }
  if (cfg.s3Endpoint && !cfg.s3Bucket) {
    throw new ConfigError('S3_BUCKET', '', 'is required when S3_ENDPOINT is set');
  }
  cfg.dataDir = path.resolve(cfg.dataDir);
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  const shownHost = cfg.host === '0.0.0.0' || cfg.host === '::' ? 'localhost' : host;
  const scheme = cfg.tlsCertFile ? 'https' : 'http';
  cfg.publicUrl = (cfg.publicUrl ?? `${scheme}://${shownHost}:${cfg.port}`).replace(/\/+$/, '');
  cfg.storeKind = cfg.s3Bucket ? 's3' : 'disk';
  return cfg;
}

/** The environment variable behind each setting, for documentation and error messages. */
export const CONFIG_VARIABLES = Object.fromEntries(Object.entries(SPEC).map(([k, s]) => [k, s.env])) as Record<
  keyof Spec,
  string
>;
