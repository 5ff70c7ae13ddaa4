// The names Kubernetes objects are stored under: a keyed hash (HMAC-SHA256) of the object's
// canonical JSON, not a plain one. Objects are content-addressed so that an unchanged object is
// stored once across backups; with a plain sha256 anyone who can list the bucket could confirm a
// guessed low-entropy Secret (a short password) by hashing the guess and looking for the key. The
// HMAC key is derived (HKDF) from the age identity that decrypts the repository, so only those who
// can read the objects anyway can compute a name, and it is the same for every backup (dedup holds).
import { createHmac, hkdfSync } from 'node:crypto';
import { LifeboatError } from '../domain/errors.ts';
import type { Plan } from '../domain/plan.ts';
import { loadRecipients } from './backup.ts';
import { identitiesFromText, parseIdentity, recipientOf } from './pipeline/age.ts';
import type { Environment } from './ports/environment.ts';

/** Versioned, so a different derivation can never collide with names made by this one. */
const HKDF_INFO = 'lifeboat kubernetes object names v1';
const HKDF_SALT = 'lifeboat';

/**
 * The naming key of this worker: from the identity (of those in the plan's identityEnv) that
 * decrypts for the plan's recipients, the one with the smallest recipient, so the order of
 * identities in the variable does not change names.
 */
export function objectNamingKey(plan: Plan, env: Environment, region: string): Buffer {
  const identityEnv = plan.storage.encryption.identityEnv;
  const text = env[identityEnv];
  const missing = (why: string) =>
    new LifeboatError(
      'MissingSecret',
      `${why}: Kubernetes objects are stored under a keyed hash derived from the repository's age identity ` +
        `(a plain hash would let anyone who can list the bucket confirm a guessed Secret); ` +
        `set ${identityEnv} on the workers of ${region}`,
    );
  if (!text) throw missing(`${identityEnv} is not set on this worker`);
  const recipients = new Set(loadRecipients(plan));
  const usable = identitiesFromText(text)
    .map((identity) => ({ identity, recipient: recipientOf(identity) }))
    .filter((i) => recipients.has(i.recipient))
    .sort((a, b) => (a.recipient < b.recipient ? -1 : a.recipient > b.recipient ? 1 : 0));
  if (!usable.length) throw missing(`no identity in ${identityEnv} decrypts for the plan's recipients`);
  return Buffer.from(hkdfSync('sha256', parseIdentity(usable[0]!.identity), HKDF_SALT, HKDF_INFO, 32));
}

/** The object's name: hex HMAC-SHA256 of its canonical JSON under the naming key. */
export function objectName(key: Buffer, canonicalJson: string): string {
  return createHmac('sha256', key).update(canonicalJson, 'utf8').digest('hex');
}
