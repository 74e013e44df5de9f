/**
 * The telemetry hook (src/telemetry.ts) and the Application Insights exporter (src/app-insights.ts)
 * against a loopback fake of the ingestion endpoint: batching, one more try for a failed batch,
 * bounded memory, and never a throw into the caller when Application Insights is unreachable.
 */
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppInsightsTelemetry } from '../src/app-insights.ts';
import { parseAppInsightsConnectionString } from '../src/config.ts';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { countStoreOperationsPerTurn, createTelemetry, logTelemetry, measureStoreOperations, noTelemetry, type TurnEvent } from '../src/telemetry.ts';
import { startFakeAppInsights, type FakeAppInsights } from './helpers/fake-app-insights.ts';
import { memoryLog } from './helpers/memory-log.ts';

const IKEY = '11111111-2222-4333-8444-555555555555';
const turn = (route: string): TurnEvent => ({ route, platform: 'slack', school: 'harbour-lane', durationMs: 12, storeOperations: 3, outcome: 'ok', correlationId: `c-${route}` });

let ingestion: FakeAppInsights;
beforeAll(async () => {
  ingestion = await startFakeAppInsights();
});
afterAll(async () => {
  await ingestion.close();
});

function exporter(options: ConstructorParameters<typeof AppInsightsTelemetry>[2] = {}, log = memoryLog('info')) {
  const target = parseAppInsightsConnectionString(ingestion.connectionString(IKEY));
  if (typeof target === 'string') throw new Error(target);
  // A long interval: these tests flush explicitly or by batch size, never by waiting.
  return { telemetry: new AppInsightsTelemetry(target, log.log, { flushIntervalMs: 3_600_000, ...options }), log };
}

describe('the Application Insights exporter', () => {
  it('sends a full batch by itself, as one POST of envelopes', async () => {
    const before = ingestion.envelopes.length;
    const bodiesBefore = ingestion.bodies.length;
    const { telemetry } = exporter({ batchSize: 3 });
    telemetry.turn(turn('a'));
    telemetry.turn(turn('b'));
    telemetry.turn(turn('c'));
    const received = (await ingestion.waitFor(before + 3)).slice(before);
    expect(ingestion.bodies.length - bodiesBefore).toBe(1);
    expect(received.map((e) => e.data.baseData.properties)).toEqual(['a', 'b', 'c'].map((route) => ({ route, platform: 'slack', school: 'harbour-lane', outcome: 'ok' })));
    expect(received[0]).toMatchObject({ iKey: IKEY, tags: { 'ai.operation.id': 'c-a' }, data: { baseData: { measurements: { durationMs: 12, storeOperations: 3 } } } });
    await telemetry.close();
  });

  it('sends errors as exceptions named by class and code, without the error message', async () => {
    const before = ingestion.envelopes.length;
    const { telemetry } = exporter();
    telemetry.error({ where: 'turn', code: 'store_unavailable', name: 'AppError', school: 'harbour-lane', route: 'qa.ask', correlationId: 'c-err' });
    telemetry.job({ school: 'harbour-lane', kind: 'incidents.retention', outcome: 'done', durationMs: 40, attempt: 1 });
    await telemetry.close();
    const [exception, job] = ingestion.envelopes.slice(before);
    expect(exception).toMatchObject({
      name: `Microsoft.ApplicationInsights.${IKEY.replace(/-/g, '')}.Exception`,
      data: { baseType: 'ExceptionData', baseData: { ver: 2, exceptions: [{ typeName: 'AppError', message: 'store_unavailable', hasFullStack: false }], properties: { where: 'turn', code: 'store_unavailable', school: 'harbour-lane', route: 'qa.ask' } } },
    });
    expect(job).toMatchObject({ data: { baseType: 'EventData', baseData: { name: 'job', properties: { kind: 'incidents.retention', outcome: 'done' }, measurements: { durationMs: 40, attempt: 1 } } } });
  });

  it('tries a batch refused with 503 once more with the next flush, and logs the failure once', async () => {
    const before = ingestion.envelopes.length;
    const { telemetry, log } = exporter();
    ingestion.failNext(1, 503);
    telemetry.turn(turn('first'));
    await telemetry.flush();
    expect(ingestion.envelopes.length).toBe(before);
    telemetry.turn(turn('second'));
    await telemetry.flush();
    expect(ingestion.envelopes.slice(before).map((e) => (e.data.baseData.properties as Record<string, string>).route)).toEqual(['first', 'second']);
    expect(log.lines().filter((line) => line.msg === 'Application Insights telemetry not sent')).toEqual([expect.objectContaining({ reason: 'HTTP 503', events: 1 })]);
    await telemetry.close();
  });

  it('drops a batch refused with 400 rather than sending it again', async () => {
    const before = ingestion.envelopes.length;
    const { telemetry } = exporter();
    ingestion.failNext(1, 400);
    telemetry.turn(turn('malformed'));
    await telemetry.flush();
    telemetry.turn(turn('after'));
    await telemetry.close();
    expect(ingestion.envelopes.slice(before).map((e) => (e.data.baseData.properties as Record<string, string>).route)).toEqual(['after']);
  });

  it('keeps at most maxQueue events while it cannot send', async () => {
    const before = ingestion.envelopes.length;
    const { telemetry } = exporter({ maxQueue: 2 });
    for (const route of ['1', '2', '3', '4']) telemetry.turn(turn(route));
    await telemetry.close();
    expect(ingestion.envelopes.slice(before).map((e) => (e.data.baseData.properties as Record<string, string>).route)).toEqual(['1', '2']);
  });

  it('never throws into the caller when the endpoint is unreachable', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const log = memoryLog('info');
    const telemetry = new AppInsightsTelemetry({ instrumentationKey: IKEY, ingestionEndpoint: `http://127.0.0.1:${port}` }, log.log, { batchSize: 1, flushIntervalMs: 3_600_000 });
    expect(() => telemetry.turn(turn('lost'))).not.toThrow();
    await telemetry.flush();
    await telemetry.close();
    const warnings = log.lines().filter((line) => line.msg === 'Application Insights telemetry not sent');
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).not.toContain(IKEY);
  });
});

describe('the telemetry hook', () => {
  it('is Application Insights with a connection string, and log lines at debug without one', () => {
    const log = memoryLog('debug');
    expect(createTelemetry({ appInsights: { instrumentationKey: IKEY, ingestionEndpoint: ingestion.url } }, log.log)).toBeInstanceOf(AppInsightsTelemetry);
    const logged = createTelemetry({}, log.log);
    logged.turn(turn('qa.ask'));
    expect(log.lines()).toEqual([expect.objectContaining({ level: 20, msg: 'telemetry', event: 'turn', route: 'qa.ask', storeOperations: 3 })]);
    const quiet = memoryLog('info');
    logTelemetry(quiet.log).turn(turn('qa.ask'));
    expect(quiet.lines()).toEqual([]);
    // Above debug, with no connection string, nothing would record the events: none are made.
    expect(createTelemetry({}, quiet.log)).toBe(noTelemetry);
  });

  it('counts the store operations made inside a measured turn, and only those', async () => {
    const store = countStoreOperationsPerTurn(createSqliteStore({ file: ':memory:' }));
    await store.create({ kind: 'k', school: 's', id: 'outside' }, {});
    const { result, storeOperations } = await measureStoreOperations(async () => {
      await store.get({ kind: 'k', school: 's', id: 'outside' });
      await Promise.all([store.upsert({ kind: 'k', school: 's', id: 'a' }, {}), store.list('k', 's')]);
      return 'done';
    });
    expect(result).toBe('done');
    expect(storeOperations).toBe(3);
    await store.close();
  });
});
