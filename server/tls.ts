import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { ConfigError } from './config.ts';

/** The files behind the coordinator's HTTPS: TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** Client certificates must chain to one of these (mutual TLS). */
  caFile?: string;
}

/** Validated PEM material, ready for `http2.createSecureServer` / `server.setSecureContext`. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** SHA-256 fingerprint of the leaf certificate (`AB:CD:…`), for logs and tests. */
  fingerprint256: string;
  subject: string;
  validTo: Date;
}

/**
 * Reads and checks the certificate, key and optional CA. Each problem — a missing or unreadable
 * file, something that is not PEM, a key that does not belong to the certificate, a certificate
 * outside its validity period — throws a `ConfigError` whose one-line message names the variable
 * and the file. Used at start-up and again on every SIGHUP.
 */
export function loadTlsMaterial(files: TlsFiles, now: number = Date.now()): TlsMaterial {
  const cert = readPem('TLS_CERT_FILE', files.certFile);
  const key = readPem('TLS_KEY_FILE', files.keyFile);
  // The first certificate in the file is the leaf; any that follow are its chain.
  const leaf = parseCertificate('TLS_CERT_FILE', files.certFile, cert);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError('TLS_KEY_FILE', files.keyFile, `not an unencrypted PEM private key (${reason(err)})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      'TLS_KEY_FILE',
      files.keyFile,
      `the key does not match the certificate in TLS_CERT_FILE (${leaf.subject.replace(/\n/g, ', ')})`,
    );
  }
  checkValidity(leaf, now, 'TLS_CERT_FILE', files.certFile);
  let ca: Buffer | undefined;
  if (files.caFile) {
    ca = readPem('TLS_CA_FILE', files.caFile);
    parseCertificate('TLS_CA_FILE', files.caFile, ca);
  }
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    fingerprint256: leaf.fingerprint256,
    subject: leaf.subject.replace(/\n/g, ', '),
    validTo: new Date(leaf.validTo),
  };
}

/**
 * Throws unless `now` lies within the certificate's validity period (RFC 5280 §4.1.2.5:
 * "the period of time from notBefore through notAfter, inclusive"). Pure: the clock is a parameter.
 */
export function checkValidity(
  cert: Pick<X509Certificate, 'validFrom' | 'validTo'>,
  now: number,
  variable: string,
  file: string,
): void {
  const validTo = Date.parse(cert.validTo);
  const validFrom = Date.parse(cert.validFrom);
  if (now > validTo) {
    throw new ConfigError(variable, file, `the certificate expired on ${new Date(validTo).toISOString()}`);
  }
  if (now < validFrom) {
    throw new ConfigError(variable, file, `the certificate is not valid before ${new Date(validFrom).toISOString()}`);
  }
}

/** Options for `createSecureServer`; without a CA no client certificate is asked for. */
export function secureServerOptions(material: TlsMaterial): tls.TlsOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca ? { ca: material.ca, requestCert: true, rejectUnauthorized: true } : {}),
    minVersion: 'TLSv1.2',
  };
}

/** The part of the options `server.setSecureContext` swaps on reload (keys, certificates, CA). */
export function secureContextOptions(material: TlsMaterial): tls.SecureContextOptions {
  return { cert: material.cert, key: material.key, ...(material.ca ? { ca: material.ca } : {}), minVersion: 'TLSv1.2' };
}

/**
 * The CAs to trust for the S3 endpoint: Node's public roots, NODE_EXTRA_CA_CERTS (which an
 * explicit `ca` list would otherwise drop: Node adds it only to its default store) and S3_CA_FILE.
 */
export function s3TrustedCas(caFile: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = env.NODE_EXTRA_CA_CERTS;
  const cas = [...tls.rootCertificates];
  if (extra) {
    // Node only warns about an unreadable NODE_EXTRA_CA_CERTS; so do we (by leaving it out).
    const pem = tryRead(extra);
    if (pem) cas.push(pem);
  }
  const own = readPem('S3_CA_FILE', caFile);
  parseCertificate('S3_CA_FILE', caFile, own);
  cas.push(own.toString('utf8'));
  return cas;
}

function readPem(variable: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      variable,
      file,
      `cannot read the file (${(err as NodeJS.ErrnoException).code ?? reason(err)})`,
    );
  }
}

function parseCertificate(variable: string, file: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(variable, file, `not a PEM certificate (${reason(err)})`);
  }
}

function tryRead(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
