import path from 'node:path';
import { parseArgs } from 'node:util';
import { ApiKeysRepository } from '../db/api-keys-repository.ts';
import { openDatabase, runMigrations } from '../db/client.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startEmbeddedPostgres } from './embedded.ts';

const USAGE = `Usage: npm run admin -- <command>

  keys create <principal> [--label TEXT]   create an API key (printed once, stored hashed)
  keys list [--principal NAME]             list keys (never the keys themselves)
  keys revoke <id>                         revoke a key; takes effect on its next request

Uses DATABASE_URL, or the embedded database under DATA_DIR (attaching to a running coordinator's).`;

/** Operator commands against the coordinator's database. */
async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { label: { type: 'string' }, principal: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [group, command, arg] = positionals;
  if (values.help || group !== 'keys' || !command) {
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
    switch (command) {
      case 'create': {
        if (!arg || !/^[A-Za-z0-9_.@-]{1,128}$/.test(arg)) throw new UsageError('keys create needs a principal name');
        const { key, row } = await keys.create(arg, values.label ? { label: values.label } : {});
        process.stdout.write(`${JSON.stringify({ id: row.id, principal: row.principal, key })}\n`);
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
        if (!(await keys.revoke(id))) {
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    else if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
