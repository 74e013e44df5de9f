/**
 * Target (a): the real esafety-bot app, exactly as the end-to-end tests start it: createApp from
 * src/main.ts on loopback with a temporary DATA_DIR, NODE_ENV=test, LOG_LEVEL=silent,
 * RATE_LIMIT_PER_MINUTE=0 and the sample policies in ./policies (see test/helpers/app.ts).
 */
import '../lib/loopback-guard.ts';
import { startApp } from '../../test/helpers/app.ts';
import { serveTarget } from './protocol.ts';

const running = await startApp();
serveTarget(Number(new URL(running.url).port), () => running.stop());
