/**
 * Imported first by every benchmark process: any attempt to open a TCP connection to a host that
 * is not loopback throws at once, so a benchmark can never reach the network by accident (e.g. a
 * botbuilder code path fetching OpenID metadata, or a proxy setting in the environment).
 */
import net from 'node:net';

const loopback = (host: string | undefined) =>
  host === undefined || host === '' || host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::ffff:127.0.0.1';

const original = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const [first, second] = args;
  let host: string | undefined;
  if (Array.isArray(first)) {
    // Internal normalized form: [options, callback].
    const options = first[0] as { host?: string; path?: string } | undefined;
    host = options?.path ? undefined : options?.host;
  } else if (first && typeof first === 'object') {
    const options = first as { host?: string; path?: string };
    host = options.path ? undefined : options.host;
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    host = typeof second === 'string' ? second : undefined;
  }
  if (!loopback(host)) throw new Error(`bench loopback guard: refused a connection to non-loopback host ${String(host)}`);
  return (original as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;

for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[name];
