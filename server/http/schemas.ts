import type { z } from 'zod';
import { ApiError } from './errors.ts';

/**
 * Validates `input` with `schema`; a failure is `400 invalid_request` whose `issues` list
 * says which field is wrong and why (and never echoes the whole body back).
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message }));
  const first = issues[0];
  throw new ApiError('invalid_request', first ? `${first.path || 'body'}: ${first.message}` : undefined, { issues });
}
