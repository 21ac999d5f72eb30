import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { MIGRATIONS_DIR, openDatabase, runMigrations } from '../../db/client.ts';
import { createTestDatabase } from '../helpers/db.ts';

test('migrations create every table with the specified constraints', async (t) => {
  const tdb = await createTestDatabase();
  t.teardown(() => tdb.drop());
  const { rows: tables } = await tdb.pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
  );
  t.deepEqual(
    tables.map((r) => r.table_name),
    ['api_keys', 'audit_log', 'chunks', 'idempotency_keys', 'principals', 'uploads'],
  );
  const { rows: cons } = await tdb.pool.query<{ conname: string }>(
    `SELECT conname FROM pg_constraint WHERE conrelid IN ('uploads'::regclass, 'chunks'::regclass)`,
  );
  const names = cons.map((r) => r.conname);
  for (const expected of ['uploads_status_check', 'chunks_upload_chunk_unique', 'chunks_upload_id_uploads_id_fk']) {
    t.true(names.includes(expected), `missing constraint ${expected}`);
  }
});

test('two coordinators migrating the same empty database at once do not race', async (t) => {
  const tdb = await createTestDatabase({ migrate: false });
  t.teardown(() => tdb.drop());
  const others = [0, 1, 2].map(() => openDatabase({ url: tdb.url, poolSize: 2 }));
  t.teardown(() => Promise.all(others.map((o) => o.close())).then(() => {}));
  await t.notThrowsAsync(Promise.all([runMigrations(tdb.pool), ...others.map((o) => runMigrations(o.pool))]));
  const { rows } = await tdb.pool.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
  const files = (await fs.readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql'));
  t.is(rows[0].n, files.length, 'each migration recorded exactly once');
});

test('the committed migrations match db/schema.ts (generating again yields nothing)', async (t) => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-migrations-'));
  t.teardown(() => fs.rm(out, { recursive: true, force: true }));
  await fs.cp(MIGRATIONS_DIR, out, { recursive: true });
  const before = await listFiles(out);
  const res = spawnSync(
    path.join('node_modules', '.bin', 'drizzle-kit'),
    ['generate', '--dialect=postgresql', '--schema=./db/schema.ts', `--out=${out}`],
    { encoding: 'utf8' },
  );
  t.is(res.status, 0, res.stderr);
  t.deepEqual(await listFiles(out), before, `drizzle-kit generated a new migration:\n${res.stdout}`);
});

async function listFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}
