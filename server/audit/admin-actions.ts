import { ApiKeysRepository } from '../../db/api-keys-repository.ts';
import { AuditRepository } from '../../db/audit-repository.ts';
import type { Db } from '../../db/client.ts';
import { PrincipalsRepository, type QuotaOverrides } from '../../db/principals-repository.ts';
import type { ApiKeyRow, PrincipalRow } from '../../db/schema.ts';
import type { AuditActor } from './audit-log.ts';

/**
 * Key and quota changes, shared by the admin command (`server/admin.ts`) and the admin
 * endpoints: each change and its audit row are written in one transaction, so neither exists
 * without the other.
 */
export class AdminActions {
  constructor(private readonly db: Db) {}

  /** Creates a key; the plain key is returned once and never recorded (the audit row has its id and prefix). */
  async createKey(
    actor: AuditActor,
    input: { principal: string; label?: string | undefined; admin?: boolean | undefined },
  ): Promise<{ key: string; row: ApiKeyRow }> {
    return this.db.transaction(async (tx) => {
      const created = await new ApiKeysRepository(tx).create(input.principal, {
        ...(input.label ? { label: input.label } : {}),
        admin: input.admin ?? false,
      });
      await new AuditRepository(tx).append({
        ...row(actor),
        action: 'key.create',
        target: input.principal,
        details: { keyId: created.row.id, keyPrefix: created.row.keyPrefix, admin: created.row.admin },
      });
      return created;
    });
  }

  /** Revokes a key at once; `null` when there is no active key with that id. */
  async revokeKey(actor: AuditActor, id: number): Promise<ApiKeyRow | null> {
    return this.db.transaction(async (tx) => {
      const revoked = await new ApiKeysRepository(tx).revokeReturning(id);
      if (!revoked) return null;
      await new AuditRepository(tx).append({
        ...row(actor),
        action: 'key.revoke',
        target: revoked.principal,
        details: { keyId: revoked.id, keyPrefix: revoked.keyPrefix },
      });
      return revoked;
    });
  }

  async setQuota(actor: AuditActor, principal: string, overrides: QuotaOverrides): Promise<PrincipalRow> {
    return this.db.transaction(async (tx) => {
      const updated = await new PrincipalsRepository(tx).setQuota(principal, overrides);
      await new AuditRepository(tx).append({
        ...row(actor),
        action: 'quota.set',
        target: principal,
        details: overrides,
      });
      return updated;
    });
  }
}

function row(actor: AuditActor) {
  return {
    principal: actor.principal,
    clientAddress: actor.clientAddress ?? null,
    requestId: actor.requestId ?? null,
  };
}
