/** Loopback ports for tests. */
import { createServer, type AddressInfo } from 'node:net';

/** A loopback port that nothing listens on (bound, then released): for "the service is down". */
export async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
