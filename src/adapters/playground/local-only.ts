/**
 * The playground answers only requests made on this machine, unless PLAYGROUND_PUBLIC=true. Three
 * checks: the peer is a loopback address (or the server's own address, for a HOST bound to one
 * interface); no proxy header says the request was forwarded from elsewhere; and the Host header
 * names this machine, so a web page on another site that rebinds its DNS name to 127.0.0.1 cannot
 * drive the playground from a developer's browser.
 */
import type { IncomingMessage } from 'node:http';

function normalise(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:/i, '').toLowerCase();
}

export function isLoopbackAddress(address: string | undefined): boolean {
  const value = normalise(address);
  return value === '::1' || (value !== undefined && /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value));
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/** Why a request is not local, or undefined when it is. */
export function notLocalReason(req: Pick<IncomingMessage, 'socket' | 'headers'>): string | undefined {
  const remote = req.socket.remoteAddress;
  const local = req.socket.localAddress;
  const sameMachine = isLoopbackAddress(remote) || (remote !== undefined && normalise(remote) === normalise(local));
  if (!sameMachine) return 'the request comes from another machine';
  if (req.headers['x-forwarded-for'] || req.headers.forwarded || req.headers['x-real-ip']) return 'the request came through a proxy';
  const host = hostnameOf(req.headers.host);
  const hostIsLocal = host !== undefined && (host === 'localhost' || host.endsWith('.localhost') || isLoopbackAddress(host) || host === normalise(local));
  if (!hostIsLocal) return 'the Host header does not name this machine';
  return undefined;
}
