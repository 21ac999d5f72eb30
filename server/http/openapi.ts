import { z } from 'zod';
import { auditQuery, createKeyBody, keyIdParam, listKeysQuery, principalName, quotaBody } from './admin-schemas.ts';
import { ERRORS } from './errors.ts';
import {
  chunkIndexParam,
  completeBody,
  initUploadBody,
  listUploadsQuery,
  presignBody,
  reportBody,
  uploadIdParam,
} from './upload-schemas.ts';

/**
 * `GET /v1/openapi.json`: OpenAPI 3.1, generated from the same zod schemas that validate
 * requests (JSON Schema 2020-12 is OpenAPI 3.1's schema dialect), so the two cannot drift.
 */
export function buildOpenApi(version: string): Record<string, unknown> {
  const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
  const json = (s: z.ZodType) => ({ required: true, content: { 'application/json': { schema: schema(s) } } });
  const errorRef = { $ref: '#/components/schemas/Error' };
  const errors = (...codes: Array<keyof typeof ERRORS>) =>
    Object.fromEntries(
      [...new Set(codes.map((c) => ERRORS[c].status))].map((status) => [
        String(status),
        {
          description: codes.filter((c) => ERRORS[c].status === status).join(', '),
          content: { 'application/json': { schema: errorRef } },
        },
      ]),
    );
  const ok = (description: string) => ({ description });
  const uploadId = { name: 'uploadId', in: 'path', required: true, schema: schema(uploadIdParam) };
  const chunkIndex = { name: 'chunkIndex', in: 'path', required: true, schema: schema(chunkIndexParam) };
  const idempotencyKey = {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    schema: { type: 'string', maxLength: 255 },
    description: 'A repeat with the same key and body returns the first response (kept 24 h).',
  };
  const common = ['invalid_request', 'unauthorized', 'throttled', 'payload_too_large'] as const;
  const queryParams = (s: z.ZodType) =>
    Object.entries((z.toJSONSchema(s, { io: 'input' }) as { properties: Record<string, unknown> }).properties).map(
      ([name, sch]) => ({ name, in: 'query', required: false, schema: sch }),
    );
  const adminOnly = 'Admin keys only (`keys create --admin`, ADMIN_API_KEYS); any other key gets 404.';
  const principalParam = { name: 'principal', in: 'path', required: true, schema: schema(principalName) };

  return {
    openapi: '3.1.0',
    info: { title: 'Conveyor', version, description: 'Chunked uploads and downloads, bytes direct to S3.' },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { enum: Object.keys(ERRORS) }, message: { type: 'string' } },
              additionalProperties: true,
            },
          },
        },
      },
    },
    paths: {
      '/v1/uploads': {
        post: {
          summary: 'Initialise an upload',
          parameters: [idempotencyKey],
          requestBody: json(initUploadBody),
          responses: {
            201: ok('Upload created'),
            ...errors(
              ...common,
              'file_too_large',
              'quota_exceeded',
              'encryption_unsupported',
              'idempotency_key_reused',
            ),
          },
        },
        get: {
          summary: "The caller's uploads, newest first",
          parameters: Object.entries(
            (z.toJSONSchema(listUploadsQuery, { io: 'input' }) as { properties: Record<string, unknown> }).properties,
          ).map(([name, s]) => ({ name, in: 'query', required: false, schema: s })),
          responses: { 200: ok('A page of uploads'), ...errors(...common) },
        },
      },
      '/v1/uploads/{uploadId}': {
        get: {
          summary: 'Status and missing chunks (reconciled with the store)',
          parameters: [uploadId],
          responses: { 200: ok('Status'), ...errors(...common, 'upload_not_found') },
        },
        delete: {
          summary: 'Abort',
          parameters: [uploadId, idempotencyKey],
          responses: { 204: ok('Aborted'), ...errors(...common, 'upload_not_found', 'upload_not_in_progress') },
        },
      },
      '/v1/uploads/{uploadId}/chunks/presign': {
        post: {
          summary: 'Presign a batch of chunk PUTs (1-100)',
          parameters: [uploadId],
          requestBody: json(presignBody),
          responses: {
            200: ok('Presigned URLs'),
            ...errors(...common, 'upload_not_found', 'upload_not_in_progress', 'chunk_index_out_of_range'),
          },
        },
      },
      '/v1/uploads/{uploadId}/chunks/{chunkIndex}': {
        put: {
          summary: 'Upload a chunk through the coordinator (relay path)',
          parameters: [
            uploadId,
            chunkIndex,
            { name: 'Content-MD5', in: 'header', required: false, schema: { type: 'string' } },
          ],
          requestBody: {
            required: true,
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          responses: {
            200: ok('Stored: {chunkIndex, etag, size}'),
            ...errors(
              ...common,
              'content_length_mismatch',
              'bad_digest',
              'upload_not_found',
              'upload_not_in_progress',
              'chunk_index_out_of_range',
              'object_store_unavailable',
            ),
          },
        },
        patch: {
          summary: 'Report a chunk uploaded directly to S3',
          parameters: [uploadId, chunkIndex],
          requestBody: json(reportBody),
          responses: {
            204: ok('Recorded'),
            ...errors(...common, 'upload_not_found', 'upload_not_in_progress', 'chunk_index_out_of_range'),
          },
        },
      },
      '/v1/files/{fileId}': {
        get: {
          summary: 'Download manifest: chunk ranges, SHA-256 where known, presigned ranged GETs',
          parameters: [{ ...uploadId, name: 'fileId' }],
          responses: { 200: ok('Manifest'), ...errors(...common, 'file_not_found') },
        },
      },
      '/v1/files/{fileId}/content': {
        get: {
          summary: 'The file streamed through the coordinator (RFC 9110 Range, If-Range)',
          parameters: [
            { ...uploadId, name: 'fileId' },
            { name: 'Range', in: 'header', required: false, schema: { type: 'string', example: 'bytes=0-1023' } },
            { name: 'If-Range', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            200: ok('The whole file'),
            206: ok('One range'),
            ...errors(...common, 'file_not_found', 'range_not_satisfiable'),
          },
        },
      },
      '/v1/usage': {
        get: {
          summary: "The caller's effective quota (null = unlimited) and current usage",
          responses: { 200: ok('{quota, usage}'), ...errors(...common) },
        },
      },
      '/v1/admin/audit': {
        get: {
          summary: 'The audit log, newest first; `principal` matches the actor or the principal acted upon',
          description: adminOnly,
          parameters: queryParams(auditQuery),
          responses: { 200: ok('{entries, nextCursor}'), ...errors(...common, 'not_found') },
        },
      },
      '/v1/admin/keys': {
        get: {
          summary: 'API keys (never the keys themselves)',
          description: adminOnly,
          parameters: queryParams(listKeysQuery),
          responses: { 200: ok('{keys}'), ...errors(...common, 'not_found') },
        },
        post: {
          summary: 'Create an API key; the key is in this response only (audited as key.create)',
          description: adminOnly,
          requestBody: json(createKeyBody),
          responses: { 201: ok('The key and its record'), ...errors(...common, 'not_found') },
        },
      },
      '/v1/admin/keys/{id}': {
        delete: {
          summary: 'Revoke a key: its very next request is refused (audited as key.revoke)',
          description: adminOnly,
          parameters: [{ name: 'id', in: 'path', required: true, schema: schema(keyIdParam) }],
          responses: { 204: ok('Revoked'), ...errors(...common, 'not_found') },
        },
      },
      '/v1/admin/principals/{principal}/quota': {
        get: {
          summary: "A principal's effective quota and usage",
          description: adminOnly,
          parameters: [principalParam],
          responses: { 200: ok('{quota, usage}'), ...errors(...common, 'not_found') },
        },
        put: {
          summary: 'Set quota overrides (0 = unlimited, null = back to the default; audited as quota.set)',
          description: adminOnly,
          parameters: [principalParam],
          requestBody: json(quotaBody),
          responses: { 200: ok('{quota, usage}'), ...errors(...common, 'not_found') },
        },
      },
      '/v1/uploads/{uploadId}/complete': {
        post: {
          summary: 'Complete the upload',
          parameters: [uploadId, idempotencyKey],
          requestBody: { ...json(z.object(completeBody.unwrap().shape)), required: false },
          responses: {
            200: ok('Completed'),
            ...errors(...common, 'upload_not_found', 'missing_chunks', 'upload_not_in_progress', 'checksum_mismatch'),
          },
        },
      },
    },
  };
}
