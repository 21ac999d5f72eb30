import { z } from 'zod';

/** Request schemas of /v1/admin/* and /v1/usage; they also generate `GET /v1/openapi.json`. */

export const principalName = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'principal: 1-128 of A-Z a-z 0-9 _ . @ -');

const isoTime = z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time such as 2026-01-31T12:00:00Z' });

export const auditQuery = z.strictObject({
  principal: principalName.optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(512).optional(),
});

export const listKeysQuery = z.strictObject({ principal: principalName.optional() });

export const createKeyBody = z.strictObject({
  principal: principalName,
  label: z.string().min(1).max(200).optional(),
  admin: z.boolean().optional(),
});

export const keyIdParam = z
  .string()
  .regex(/^\d{1,15}$/, 'key id must be a whole number')
  .transform(Number)
  .pipe(z.number().int().min(1));

const quotaValue = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional();

/** A number sets the override (0 = unlimited), `null` returns to the configured default. */
export const quotaBody = z
  .strictObject({
    maxConcurrentUploads: quotaValue,
    maxBytesInFlight: quotaValue,
    maxTotalBytes: quotaValue,
  })
  .refine(
    (b) => Object.keys(b).length > 0,
    'give at least one of maxConcurrentUploads, maxBytesInFlight, maxTotalBytes',
  );
