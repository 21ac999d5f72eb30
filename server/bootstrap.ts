import fs from 'node:fs/promises';
import path from 'node:path';
import type { ApiKeysRepository } from '../db/api-keys-repository.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export const DEV_PRINCIPAL = 'dev';

/**
 * Seeds the principals and keys from API_KEYS. With none configured, a development key is
 * created once, kept in DATA_DIR/dev-api-key (so a restart prints the same key) and
 * returned for the start-up banner.
 */
export async function seedApiKeys(
  config: Config,
  keys: ApiKeysRepository,
  logger: Logger,
): Promise<{ devKey: string | null }> {
  for (const { principal, key } of config.apiKeys) {
    if (!(await keys.seed(principal, key))) {
      logger.warn({ principal }, 'API_KEYS entry ignored: that key already belongs to another principal');
    }
  }
  for (const { principal, key } of config.adminApiKeys) {
    if (!(await keys.seed(principal, key, 'seeded from ADMIN_API_KEYS', true))) {
      logger.warn({ principal }, 'ADMIN_API_KEYS entry ignored: that key already belongs to another principal');
    }
  }
  if (config.apiKeys.length > 0 || config.adminApiKeys.length > 0) return { devKey: null };

  const file = path.join(config.dataDir, 'dev-api-key');
  const saved = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (saved) {
    await keys.seed(DEV_PRINCIPAL, saved, 'development key');
    return { devKey: saved };
  }
  const { key } = await keys.create(DEV_PRINCIPAL, { label: 'development key' });
  await fs.mkdir(config.dataDir, { recursive: true });
  await fs.writeFile(file, `${key}\n`, { mode: 0o600 });
  return { devKey: key };
}
