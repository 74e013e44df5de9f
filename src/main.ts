/**
 * The composition root: settings → store → services → bot → channels → HTTP server. Nothing else
 * wires; tests call createApp with their own settings and loopback fakes.
 */
import { randomBytes } from 'node:crypto';
import { createBot } from './bot/create-bot.ts';
import { handleReadRequest } from './bot/features/acknowledgements/read-page.ts';
import { isAppError } from './errors.ts';
import { GLOBAL_PARTITION } from './store/store.ts';
import { Directory } from './bot/directory.ts';
import { Notifier } from './bot/notifier.ts';
import { Roster } from './bot/roster.ts';
import { Jobs, recurring, type JobsOptions } from './delivery/jobs.ts';
import { MessageRefs } from './delivery/message-refs.ts';
import type { ProgressOptions } from './bot/features/progress.ts';
import { sendReviewReminders } from './bot/features/acknowledgements/reviews.ts';
import { defaultRetention } from './bot/features/incidents/reports.ts';
import { PersonalData } from './bot/features/personal-data.ts';
import { AuditLog } from './bot/audit.ts';
import { Outbox, type OutboxOptions } from './delivery/outbox.ts';
import type { Settings } from './config.ts';
import type { Logger } from './logger.ts';
import { PolicyLibrary } from './policies/library.ts';
import { loadPolicyDirectory } from './policies/load.ts';
import { createStore } from './store/index.ts';
import type { Store } from './store/store.ts';
import type { createServer } from './server.ts';
import { classifyDeliveryFailure } from './delivery/classify.ts';
import { countStoreOperationsPerTurn, createTelemetry, noTelemetry, type Telemetry } from './telemetry.ts';

/** The server: every core part (it returns `...core`), with HTTP on top. Its outbox and jobs run (stopped by close). */
export interface App extends CoreParts {
  server: ReturnType<typeof createServer>;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops taking requests, lets turns in flight finish, closes the store. */
  close(): Promise<void>;
}

export interface CoreParts {
  settings: Settings;
  store: Store;
  directory: Directory;
  library: PolicyLibrary;
  notifier: Notifier;
  bot: ReturnType<typeof createBot>['bot'];
  incidents: ReturnType<typeof createBot>['incidents'];
  acks: ReturnType<typeof createBot>['acks'];
  linkSecret: string;
  /** The durable outbox (MessageQueue): enqueue anywhere; the server processes send. */
  outbox: Outbox;
  /** Durable jobs (JobScheduler): schedule anywhere; the server processes run them. */
  jobs: Jobs;
  /** The staff directory's roster sync; the channels register their platform's reader. */
  roster: Roster;
  /** Operational events (src/telemetry.ts): none for the command line, the log or Application Insights for the server. */
  telemetry: Telemetry;
  /** Question log retention and erasure requests (docs/data-protection.md). */
  personalData: PersonalData;
}

/** Tuning for the outbox and the job runner (docs/delivery.md); tests and benchmarks shorten or raise them. */
export interface DeliveryOptions {
  outbox?: Partial<OutboxOptions>;
  jobs?: Partial<JobsOptions>;
  /** How often (refreshMs, 15 s) and how long (maxMs, 2 h) progress cards keep themselves up to date. */
  progress?: Partial<ProgressOptions>;
  /**
   * Whether features send proactive messages through the outbox (createApp: yes, its worker sends
   * them) or directly through the notifier, waiting for the result (createCore's default: a process
   * with no outbox worker, such as the terminal chat or a harness capturing proactive messages).
   */
  featuresUseOutbox?: boolean;
}

/** Everything but the HTTP server: what the terminal chat and the CLI need. `now` is the caches' clock (tests advance it instead of sleeping). */
export async function createCore(settings: Settings, log: Logger, options: { store?: Store; now?: () => number; delivery?: DeliveryOptions; telemetry?: Telemetry } = {}): Promise<CoreParts> {
  const telemetry = options.telemetry ?? noTelemetry;
  const unwrapped = options.store ?? (await createStore(settings));
  // Telemetry counts each turn's store operations; without it the store is used as it is.
  const store = telemetry === noTelemetry ? unwrapped : countStoreOperationsPerTurn(unwrapped);
  const directory = new Directory(store, { cacheSeconds: settings.roleCacheSeconds, now: options.now });
  const library = new PolicyLibrary(store, { now: options.now });
  const messageRefs = new MessageRefs(store, log);
  const notifier = new Notifier(directory, log, messageRefs);
  const outbox = new Outbox(
    { store, log, recipient: async (school, userId) => (await directory.getUser(school, userId))?.data, send: measuredSend(telemetry, (school, user, replies) => notifier.deliver(user, replies, school)) },
    options.delivery?.outbox,
  );
  const jobs = new Jobs({ store, log, telemetry }, options.delivery?.jobs);
  const roster = new Roster({ directory, store, jobs, log });
  roster.registerJobs(jobs);
  const queue = options.delivery?.featuresUseOutbox ? outbox : undefined;
  const linkSecret = settings.linkSigningSecret ?? (await storedSecret(store, 'link-signing'));
  const { bot, incidents, acks } = createBot({
    store, directory, library, notifier, queue, jobs, log, messageRefs,
    progress: options.delivery?.progress,
    defaultSchool: settings.defaultSchool.id,
    policiesDir: settings.policiesDir,
    escalateAfterMinutes: settings.incidents.escalateAfterMinutes,
    publicUrl: settings.publicUrl,
    linkSecret,
    roster,
    telemetry,
  });
  const personalData = new PersonalData({ store, audit: new AuditLog(store), log });
  return { settings, store, directory, library, notifier, bot, incidents, acks, outbox, jobs, linkSecret, roster, telemetry, personalData };
}

/** The outbox's send, with one telemetry event per attempt: sent, or how it failed. */
function measuredSend(telemetry: Telemetry, send: import('./delivery/outbox.ts').OutboxDeps['send']): import('./delivery/outbox.ts').OutboxDeps['send'] {
  return async (school, user, replies) => {
    const started = performance.now();
    const event = (outcome: Parameters<Telemetry['delivery']>[0]['outcome']) => telemetry.delivery({ school, platform: user.platform, outcome, durationMs: Math.round(performance.now() - started) });
    try {
      await send(school, user, replies);
    } catch (error) {
      event(classifyDeliveryFailure(user.platform, error).kind);
      throw error;
    }
    event('sent');
  };
}

/**
 * A secret generated once and kept in the store's global partition, so every instance (and every
 * restart) signs links alike without anyone having to configure one.
 */
async function storedSecret(store: Store, name: string): Promise<string> {
  const key = { kind: 'secret', school: GLOBAL_PARTITION, id: name };
  const existing = await store.get<{ value: string }>(key);
  if (existing) return existing.data.value;
  try {
    return (await store.create(key, { value: randomBytes(32).toString('base64url') })).data.value;
  } catch (error) {
    if (!isAppError(error, 'conflict')) throw error;
    return (await store.get<{ value: string }>(key))!.data.value;
  }
}

/**
 * Outside production the default school exists from the first start, and while it has no
 * policies the sample pack is imported, so a fresh clone answers questions at once.
 */
export async function prepareDefaultSchool(core: CoreParts, log: Logger): Promise<void> {
  const { settings, directory, library } = core;
  if (settings.production) return;
  const school = await directory.getSchool(settings.defaultSchool.id);
  if (!school) await directory.upsertSchool({ id: settings.defaultSchool.id, name: settings.defaultSchool.name });
  if (await library.hasPolicies(settings.defaultSchool.id)) return;
  const loaded = await loadPolicyDirectory(settings.policiesDir).catch(() => undefined);
  if (!loaded) {
    log.warn({ dir: settings.policiesDir }, 'no policy folder to import');
    return;
  }
  for (const error of loaded.errors) log.warn({ error }, 'policy file not imported');
  const report = await library.import(settings.defaultSchool.id, loaded.documents, 'system');
  log.info({ added: report.added.length }, 'sample policies imported into the default school');
}

export async function createApp(settings: Settings, log: Logger, options: { store?: Store; now?: () => number; delivery?: DeliveryOptions; telemetry?: Telemetry } = {}): Promise<App> {
  // The HTTP stack (restify, botbuilder, Bolt) is loaded here, not at the top: the command-line tools
  // that only need the core (schools, roles, policies, chat) then start in well under a second.
  const [{ createServer }, { createTeamsChannel, validateActivity }, { createSlackChannel }] = await Promise.all([
    import('./server.ts'),
    import('./adapters/teams/teams-adapter.ts'),
    import('./adapters/slack/slack-channel.ts'),
  ]);
  const core = await createCore(settings, log, { ...options, telemetry: options.telemetry ?? createTelemetry(settings, log), delivery: { featuresUseOutbox: true, ...options.delivery } });
  await prepareDefaultSchool(core, log);
  const { bot, store, notifier } = core;
  // Schools, tenant mappings and policy indexes are kept current off the turn path (docs/data-model.md).
  core.directory.startRefresh({ onError: (error) => log.warn({ err: { name: (error as Error).name } }, 'directory refresh failed') });
  core.library.startRefresh({ onError: (error, school) => log.warn({ school, err: { name: (error as Error).name } }, 'policy index refresh failed') });

  const teams = settings.teams.enabled ? createTeamsChannel({ settings, bot, log, roster: core.roster }) : undefined;
  if (teams) {
    notifier.register('teams', teams.send);
    notifier.register('playground', teams.send);
  }
  const slack = settings.slack
    ? createSlackChannel({
        settings: settings.slack,
        publicUrl: settings.publicUrl,
        bot,
        store,
        directory: core.directory,
        log,
        roster: core.roster,
        // The Home tab starts with what the person has to read and accept, buttons and signed links included.
        homeSections: ({ school, userId }) => core.acks.pendingCards(school, userId),
      })
    : undefined;
  if (slack) notifier.register('slack', slack.send);
  // The browser playground (GET /): on outside production unless PLAYGROUND_ENABLED says otherwise.
  const playground = settings.playground.enabled
    ? (await import('./adapters/playground/playground.ts')).createPlayground({ settings, log, bot, directory: core.directory, teams })
    : undefined;
  if (playground) {
    if (settings.production) log.warn('the playground is enabled in production (PLAYGROUND_ENABLED=true)');
    notifier.register('playground', playground.send);
    await playground.prepare();
  }

  const server = createServer({
    log,
    store,
    rateLimitPerMinute: settings.rateLimitPerMinute,
    teams: teams && {
      process: teams.process,
      validate: validateActivity,
    },
    slack: slack?.requestListener as never,
    extraRoutes: (server) => {
      playground?.mount(server);
      mountReadRoute(server, core);
    },
  });
  slack?.mountInstallRoutes(server);

  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.pre((_req, res, next) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    next();
  });

  const ensureRecurring = recurringWork(core);
  for (const school of await core.directory.listSchools()) await ensureRecurring(school.id);
  // Every server process sends the outbox and runs due jobs (leases keep instances from doing the
  // same item twice); the first look for work is done before the app is handed out.
  await Promise.all([core.outbox.start(), core.jobs.start()]);

  return {
    ...core,
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(settings.port, settings.host, () => resolve((server.address() as { port: number }).port));
      }),
    close: async () => {
      server.close();
      server.server.closeIdleConnections?.();
      if (inFlight > 0) await new Promise<void>((resolve) => {
        drained = resolve;
        setTimeout(resolve, 10_000).unref();
      });
      // Sends in flight finish (or are released) and running jobs end before the channels and the store go.
      await Promise.all([core.outbox.stop(), core.jobs.stop()]);
      await Promise.all([core.directory.stopRefresh(), core.library.stopRefresh()]);
      await slack?.drain();
      await core.telemetry.close();
      await store.close();
    },
  };
}

/** GET /read/SCHOOL/DOC/HASH/USER/SIGNATURE: the policy page behind "Read the policy" (signed per person). */
function mountReadRoute(server: import('restify').Server, core: CoreParts): void {
  server.get('/read/:school/:docId/:hash/:userId/:signature', async (req: import('restify').Request, res: import('restify').Response) => {
    const params = req.params as Record<string, string>;
    const result = await handleReadRequest(
      { library: core.library, acks: core.acks, linkSecret: core.linkSecret, schoolName: async (id) => (await core.directory.getSchool(id))?.name },
      { school: params.school!, docId: params.docId!, hash: params.hash!, userId: params.userId!, signature: params.signature! },
    );
    res.writeHead(result.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'", 'referrer-policy': 'no-referrer' });
    res.end(result.html);
  });
}

/**
 * The school's recurring work, as durable jobs: policy review reminders on school-day mornings and
 * the nightly retention sweeps (incidents, the question log, then finished broadcasts in the
 * outbox). Registers the handlers on core.jobs and returns `ensure(school)`, idempotent: the server
 * calls it for every school at start-up, `schools add` for the school it registers (so a school
 * added while the server runs gets its reminders and sweeps without a restart).
 */
export function recurringWork(core: CoreParts): (school: string) => Promise<void> {
  const timeZone = async (school: string) => (await core.directory.getSchool(school))?.timeZone ?? 'Europe/London';
  const reviews = recurring(core.jobs, {
    kind: 'reviews.remind',
    timeZone,
    handler: async (job) => {
      const school = await core.directory.getSchool(job.school);
      if (school) await sendReviewReminders({ store: core.store, library: core.library, directory: core.directory, queue: core.outbox }, school, new Date());
    },
  });
  const DAY_MS = 24 * 60 * 60 * 1000;
  // Nightly, outside working hours, one after the other: each removes what is past its retention.
  const sweeps = ([
    ['incidents.retention', '0 2 * * *', (school) => core.incidents.applyRetention(school, { ...defaultRetention, ...core.settings.incidents.retentionOverrides }, new Date())],
    ['questions.retention', '30 2 * * *', (school) => core.personalData.applyQuestionLogRetention(school, core.settings.questionLogRetentionDays, new Date())],
    ['outbox.retention', '45 2 * * *', (school) => core.outbox.purgeFinished(school, new Date(Date.now() - core.settings.outboxRetentionDays * DAY_MS))],
  ] as const satisfies ReadonlyArray<readonly [string, string, (school: string) => Promise<unknown>]>).map(([kind, pattern, sweep]) =>
    recurring(core.jobs, { kind, pattern, workingHours: false, timeZone, handler: async (job) => void (await sweep(job.school)) }),
  );
  return async (school) => {
    await reviews.ensure(school);
    for (const sweep of sweeps) await sweep.ensure(school);
  };
}
