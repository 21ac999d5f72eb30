import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ApiKeysRepository } from '../db/api-keys-repository.ts';
import { AuditRepository } from '../db/audit-repository.ts';
import { openDatabase, runMigrations } from '../db/client.ts';
import { effectiveQuota, PrincipalsRepository, type QuotaOverrides } from '../db/principals-repository.ts';
import { AdminActions } from './audit/admin-actions.ts';
import type { AuditActor } from './audit/audit-log.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startEmbeddedPostgres } from './embedded.ts';

const USAGE = `Usage: npm run admin -- <command>

  keys create <principal> [--label TEXT] [--admin]
                                           create an API key (printed once, stored hashed);
                                           --admin: it may also call /v1/admin/*
  keys list [--principal NAME]             list keys (never the keys themselves)
  keys revoke <id>                         revoke a key; its very next request is refused
  audit [--principal P] [--since ISO] [--until ISO] [--limit N] [--json]
                                           the audit log, newest first (P acted or was acted upon)
  quota show <principal>                   effective quota and current usage
  quota set <principal> [--max-concurrent-uploads N] [--max-bytes-in-flight N]
            [--max-total-bytes N]          per-principal overrides (0 = unlimited, "default" = unset)

Key and quota changes are recorded in the audit log as principal "cli:<os user>".

Uses DATABASE_URL, or the embedded database under DATA_DIR (attaching to a running coordinator's).`;

/** Operator commands against the coordinator's database. */
async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      label: { type: 'string' },
      principal: { type: 'string' },
      admin: { type: 'boolean' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      'max-concurrent-uploads': { type: 'string' },
      'max-bytes-in-flight': { type: 'string' },
      'max-total-bytes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [group, command, arg] = positionals;
  const known = (group === 'keys' || group === 'quota') && command;
  if (values.help || !(known || group === 'audit')) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }

  const config = loadConfig();
  const embedded = config.databaseUrl
    ? null
    : await startEmbeddedPostgres({ dir: path.join(config.dataDir, 'postgres'), attach: true });
  const database = openDatabase({ url: config.databaseUrl ?? embedded!.url, poolSize: 1 });
  try {
    await runMigrations(database.pool);
    const keys = new ApiKeysRepository(database.db);
    const actions = new AdminActions(database.db);
    const actor: AuditActor = { principal: `cli:${os.userInfo().username}` };
    if (group === 'audit') return await printAudit(new AuditRepository(database.db), values);
    if (group === 'quota') return await quota(database.db, actions, actor, command!, arg, values);
    switch (command) {
      case 'create': {
        if (!arg || !PRINCIPAL.test(arg)) throw new UsageError('keys create needs a principal name');
        const input = { principal: arg, label: values.label, admin: values.admin ?? false };
        const { key, row } = await actions.createKey(actor, input);
        process.stdout.write(`${JSON.stringify({ id: row.id, principal: row.principal, admin: row.admin, key })}\n`);
        return 0;
      }
      case 'list': {
        for (const k of await keys.list(values.principal)) {
          const { keyHash: _hash, ...shown } = k;
          process.stdout.write(`${JSON.stringify(shown)}\n`);
        }
        return 0;
      }
      case 'revoke': {
        const id = Number(arg);
        if (!Number.isSafeInteger(id) || id <= 0) throw new UsageError('keys revoke needs a key id (see keys list)');
        if (!(await actions.revokeKey(actor, id))) {
          process.stderr.write(`no active key with id ${id}\n`);
          return 1;
        }
        process.stdout.write(`revoked key ${id}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command: keys ${command}`);
    }
  } finally {
    await database.close();
    await embedded?.stop();
  }
}

class UsageError extends Error {}

const PRINCIPAL = /^[A-Za-z0-9_.@-]{1,128}$/;

type Values = Record<string, string | boolean | undefined>;

function parseTime(name: string, v: string | boolean | undefined): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${name} must be an ISO 8601 time, got ${JSON.stringify(v)}`);
  return d;
}

/** `audit`: newest first; `--json` prints one JSON object per line, otherwise aligned columns. */
async function printAudit(audit: AuditRepository, values: Values): Promise<number> {
  const principal = typeof values.principal === 'string' ? values.principal : undefined;
  if (principal !== undefined && !PRINCIPAL.test(principal)) throw new UsageError('--principal: not a principal name');
  const limit = typeof values.limit === 'string' ? Number(values.limit) : 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit must be 1..100000');
  const since = parseTime('since', values.since);
  const until = parseTime('until', values.until);
  let cursor: string | undefined;
  let left = limit;
  while (left > 0) {
    const page = await audit.list({
      limit: Math.min(left, 1000),
      ...(principal ? { principal } : {}),
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
      ...(cursor ? { cursor } : {}),
    });
    for (const r of page.items) {
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...r, at: r.at.toISOString() })}\n`);
      } else {
        const cols = [
          r.at.toISOString(),
          r.principal,
          r.action,
          r.target ?? '-',
          r.uploadId ?? '-',
          r.bytes ?? '-',
          r.chunks ?? '-',
          r.clientAddress ?? '-',
          r.requestId ?? '-',
        ];
        process.stdout.write(`${cols.join('\t')}\n`);
      }
    }
    left -= page.items.length;
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return 0;
}

async function quota(
  db: ConstructorParameters<typeof AdminActions>[0],
  actions: AdminActions,
  actor: AuditActor,
  command: string,
  principal: string | undefined,
  values: Values,
): Promise<number> {
  if (!principal || !PRINCIPAL.test(principal)) throw new UsageError(`quota ${command} needs a principal name`);
  const principals = new PrincipalsRepository(db);
  if (command === 'set') {
    const overrides: QuotaOverrides = {};
    const flags = [
      ['max-concurrent-uploads', 'maxConcurrentUploads'],
      ['max-bytes-in-flight', 'maxBytesInFlight'],
      ['max-total-bytes', 'maxTotalBytes'],
    ] as const;
    for (const [flag, field] of flags) {
      const v = values[flag];
      if (typeof v !== 'string') continue;
      if (v === 'default') overrides[field] = null;
      else if (/^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v))) overrides[field] = Number(v);
      else throw new UsageError(`--${flag} must be a whole number or "default", got ${JSON.stringify(v)}`);
    }
    if (Object.keys(overrides).length === 0) throw new UsageError('quota set needs at least one --max-… option');
    await actions.setQuota(actor, principal, overrides);
  } else if (command !== 'show') {
    throw new UsageError(`unknown command: quota ${command}`);
  }
  const config = loadConfig();
  const defaults = {
    maxConcurrentUploads: config.quotaMaxConcurrentUploads,
    maxBytesInFlight: config.quotaMaxBytesInFlight,
    maxTotalBytes: config.quotaMaxTotalBytes,
  };
  const row = await principals.get(principal);
  const out = { principal, quota: effectiveQuota(defaults, row), usage: await principals.usage(principal) };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    else if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
