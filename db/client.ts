import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.ts';

export type Db = NodePgDatabase<typeof schema>;
/** A transaction handle: the same query API as `Db`. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Key of the session-level advisory lock that serialises migrations across coordinators. */
const MIGRATION_LOCK_KEY = 7_263_310_001;

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  poolSize?: number;
  /** Called for errors on idle pooled connections (e.g. the server restarted), which would otherwise crash the process. */
  onPoolError?: (err: Error) => void;
}

export function openDatabase(opts: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs (lock waits, a dead server) must not hold a request forever.
    statement_timeout: 30_000,
    // …and one whose connection went silent (a half-open socket, a stalled proxy) never reaches the
    // server, whose statement_timeout cannot help: the client gives up on its own a little later.
    query_timeout: 35_000,
    application_name: 'conveyor',
  });
  pool.on('error', (err) => opts.onPoolError?.(err));
  // pg-pool listens for errors only on idle clients: a checked-out client whose connection dies
  // between two queries (a transaction waiting on S3, PostgreSQL restarting) emits 'error' with
  // no listener, which would crash the process. Its next query fails instead, and the request
  // that holds it answers 503.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = drizzle({ client: pool, schema });
  return {
    pool,
    db,
    // pool.end() waits until every checked-out client has been given back: one that an error path
    // never released (seen after PostgreSQL restarts under load) would hold shutdown forever.
    close: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<void>((r) => {
        timer = setTimeout(r, CLOSE_TIMEOUT_MS);
      });
      await Promise.race([pool.end(), waited]);
      clearTimeout(timer);
    },
  };
}

const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Applies the committed drizzle-kit migrations. Two coordinators starting together must not
 * race, so the whole run holds a PostgreSQL advisory lock on one dedicated connection;
 * the second waits, then finds nothing left to apply.
 */
export async function runMigrations(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS_DIR });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
