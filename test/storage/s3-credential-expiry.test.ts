import { S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import { CREDENTIAL_EXPIRY_MARGIN_SECONDS, capExpiresIn, S3ObjectStore } from '../../server/storage/s3-object-store.ts';

/**
 * Presigned URLs never outlive the credentials that signed them: with temporary credentials
 * (an `expiration`), X-Amz-Expires is cut to the credentials' remaining lifetime minus a margin.
 */

const MARGIN = CREDENTIAL_EXPIRY_MARGIN_SECONDS;

test('capExpiresIn: never above the request, never past the credentials minus the margin, never below 1', (t) => {
  const now = Date.UTC(2025, 0, 1);
  t.is(capExpiresIn(900, now), 900, 'static keys: no cap');
  for (const requested of [1, 60, 900, 3600, 604_800]) {
    for (const left of [0, 30, MARGIN, MARGIN + 1, 600, 3600, 7 * 86_400, 30 * 86_400]) {
      const got = capExpiresIn(requested, now, new Date(now + left * 1000));
      t.true(Number.isInteger(got) && got >= 1 && got <= requested, `${requested}/${left}: ${got}`);
      if (left - MARGIN >= 1) t.true(got <= left - MARGIN, `${requested}/${left}: ${got}`);
      if (left - MARGIN >= requested) t.is(got, requested);
    }
  }
});

function storeWith(expiration: Date | undefined, now: number) {
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: 'https://s3.example.com',
    forcePathStyle: true,
    // Our own provider, as a role or web identity provider would answer.
    credentials: async () => ({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
      ...(expiration ? { expiration } : {}),
    }),
  });
  return new S3ObjectStore({
    bucket: 'b',
    region: 'us-east-1',
    endpoint: 'https://s3.example.com',
    client,
    now: () => now,
  });
}

const expiresParam = (url: string) => Number(new URL(url).searchParams.get('X-Amz-Expires'));

test('presigned part and GET URLs are capped by the credentials expiration', async (t) => {
  const now = Date.now();
  // 10 minutes left (above the SDK's 5-minute refresh window, so the provider is not re-asked).
  const short = storeWith(new Date(now + 600_000), now);
  const [part] = await short.presignUploadParts({
    key: 'k',
    uploadId: 'u',
    expiresInSeconds: 900,
    parts: [{ partNumber: 1, contentLength: 5 }],
  });
  t.is(expiresParam(part!.url), 600 - MARGIN);
  t.is(part!.expiresAt.getTime(), Math.floor(now / 1000) * 1000 + (600 - MARGIN) * 1000);
  const get = await short.presignGetObject({ key: 'k', expiresInSeconds: 900 });
  t.is(expiresParam(get.url), 600 - MARGIN);
  t.true(get.url.startsWith('https://s3.example.com/b/k?'), 'https:// when the endpoint is');

  const long = storeWith(new Date(now + 7_200_000), now);
  t.is(expiresParam((await long.presignGetObject({ key: 'k', expiresInSeconds: 900 })).url), 900);
  const forever = storeWith(undefined, now);
  t.is(expiresParam((await forever.presignGetObject({ key: 'k', expiresInSeconds: 900 })).url), 900);
});
