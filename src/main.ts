/**
 * The composition root: settings → store → services → bot → channels → HTTP server. Nothing else
 * wires; tests call createApp with their own settings and loopback fakes.
 */
import { createBot } from './bot/create-bot.ts';
import { Directory } from './bot/directory.ts';
import { Notifier } from './bot/notifier.ts';
import type { Settings } from './config.ts';
import type { Logger } from './logger.ts';
import { PolicyLibrary } from './policies/library.ts';
import { loadPolicyDirectory } from './policies/load.ts';
import { createStore } from './store/index.ts';
import type { Store } from './store/store.ts';
import type { createServer } from './server.ts';

export interface App {
  settings: Settings;
  store: Store;
  directory: Directory;
  library: PolicyLibrary;
  notifier: Notifier;
  bot: ReturnType<typeof createBot>['bot'];
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
}

/** Everything but the HTTP server: what the terminal chat and the CLI need. `now` is the caches' clock (tests advance it instead of sleeping). */
export async function createCore(settings: Settings, log: Logger, options: { store?: Store; now?: () => number } = {}): Promise<CoreParts> {
  const store = options.store ?? (await createStore(settings));
  const directory = new Directory(store, { cacheSeconds: settings.roleCacheSeconds, now: options.now });
  const library = new PolicyLibrary(store, { now: options.now });
  const notifier = new Notifier(directory, log);
  const { bot, incidents } = createBot({ store, directory, library, notifier, log, defaultSchool: settings.defaultSchool.id, policiesDir: settings.policiesDir, escalateAfterMinutes: settings.incidents.escalateAfterMinutes });
  return { settings, store, directory, library, notifier, bot, incidents };
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

export async function createApp(settings: Settings, log: Logger, options: { store?: Store; now?: () => number } = {}): Promise<App> {
  // The HTTP stack (restify, botbuilder, Bolt) is loaded here, not at the top: the command-line tools
  // that only need the core (schools, roles, policies, chat) then start in well under a second.
  const [{ createServer }, { activitySchema, createTeamsChannel, messageActivitySchema }, { createSlackChannel }] = await Promise.all([
    import('./server.ts'),
    import('./adapters/teams/teams-adapter.ts'),
    import('./adapters/slack/slack-channel.ts'),
  ]);
  const core = await createCore(settings, log, options);
  await prepareDefaultSchool(core, log);
  const { bot, store, notifier } = core;


  const teams = settings.teams.enabled ? createTeamsChannel({ settings, bot, log }) : undefined;
  if (teams) {
    notifier.register('teams', teams.send);
    notifier.register('playground', teams.send);
  }
  const slack = settings.slack ? createSlackChannel({ settings: settings.slack, bot, log }) : undefined;

  const server = createServer({
    log,
    store,
    rateLimitPerMinute: settings.rateLimitPerMinute,
    teams: teams && {
      process: teams.process,
      validate: (body) => {
        const base = activitySchema.safeParse(body);
        if (!base.success) return `Not a Bot Framework Activity: ${base.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
        if (base.data.type !== 'message') return undefined;
        const message = messageActivitySchema.safeParse(body);
        return message.success ? undefined : `A message Activity needs ${message.error.issues.map((i) => `${i.path.join('.') || 'body'} (${i.message})`).join(', ')}`;
      },
    },
    slack: slack?.requestListener as never,
  });

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
      await store.close();
    },
  };
}
