/**
 * Links signed for one person, so the server can serve a policy version as a readable page and
 * record that this person opened it, without a login. The signature covers school, document,
 * version and user; anything altered gives a 404.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface PolicyLink {
  school: string;
  docId: string;
  hash: string;
  userId: string;
}

const payload = (link: PolicyLink) => [link.school, link.docId, link.hash, link.userId].join('\n');

export function signLink(secret: string, link: PolicyLink): string {
  return createHmac('sha256', secret).update(payload(link)).digest('base64url').slice(0, 32);
}

export function verifyLink(secret: string, link: PolicyLink, signature: string): boolean {
  const expected = Buffer.from(signLink(secret, link));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export function policyLinkUrl(baseUrl: string, secret: string, link: PolicyLink): string {
  const parts = [link.school, link.docId, link.hash, link.userId, signLink(secret, link)].map(encodeURIComponent);
  return `${baseUrl}/read/${parts.join('/')}`;
}
