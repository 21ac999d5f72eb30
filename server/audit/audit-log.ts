import type { AuditRepository } from '../../db/audit-repository.ts';
import type { Logger } from '../logger.ts';

/**
 * What the audit log records (README "Audit log"). One row per successful action; a presign
 * batch is one row with its chunk count and bytes, not one per chunk.
 */
export const AUDIT_ACTIONS = [
  'upload.init',
  'chunks.presign',
  'chunk.relay',
  'upload.complete',
  'upload.abort',
  'file.manifest',
  'file.download',
  'key.create',
  'key.revoke',
  'quota.set',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who asked, from where: taken from the request (or `cli:<user>` for the admin command). */
export interface AuditActor {
  principal: string;
  clientAddress?: string | null;
  requestId?: string | null;
}

export interface AuditEvent {
  action: AuditAction;
  target?: string | null;
  uploadId?: string | null;
  bytes?: number | null;
  chunks?: number | null;
  details?: Record<string, unknown>;
}

/**
 * Writes audit rows. The write is awaited before the response is sent: an action whose record
 * cannot be written fails (500) rather than happening unrecorded. Never put secrets in
 * `details` (keys, URLs): the table is readable by admins and copied to backups.
 */
export class AuditLog {
  constructor(
    private readonly repo: AuditRepository,
    private readonly log?: Logger,
  ) {}

  async record(actor: AuditActor, event: AuditEvent): Promise<void> {
    try {
      await this.repo.append({
        principal: actor.principal,
        clientAddress: actor.clientAddress ?? null,
        requestId: actor.requestId ?? null,
        action: event.action,
        target: event.target ?? null,
        uploadId: event.uploadId ?? null,
        bytes: event.bytes ?? null,
        chunks: event.chunks ?? null,
        details: event.details ?? {},
      });
    } catch (err) {
      this.log?.error({ err, action: event.action, principal: actor.principal }, 'audit write failed');
      throw err;
    }
  }
}

/** The actor of an authenticated request (`ctx.state.principal`, Koa's `ctx.ip`, the request id). */
export function actorOf(ctx: { state: { principal?: string; requestId?: string }; ip: string }): AuditActor {
  return { principal: ctx.state.principal!, clientAddress: ctx.ip || null, requestId: ctx.state.requestId ?? null };
}
