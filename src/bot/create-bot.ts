/**
 * Assembles the core: the router with every feature's routes, and the Bot around it. Knows nothing
 * of platforms; main.ts gives it the store and services.
 */
import type { Logger } from '../logger.ts';
import type { PolicyLibrary } from '../policies/library.ts';
import type { Store } from '../store/store.ts';
import type { Telemetry } from '../telemetry.ts';
import { AuditLog } from './audit.ts';
import { Bot } from './bot.ts';
import type { Directory } from './directory.ts';
import { coreRoutes } from './features/core.ts';
import { immediateStepsReplies } from './features/immediate-steps.ts';
import { policyRoutes } from './features/policies.ts';
import { qaRoutes } from './features/qa.ts';
import { CaseBook } from './features/incidents/cases.ts';
import { IncidentService, incidentRoutes } from './features/incidents/routes.ts';
import type { JobScheduler, MessageQueue } from '../delivery/types.ts';
import { DirectQueue } from '../delivery/direct-queue.ts';
import { AcknowledgementService } from './features/acknowledgements/service.ts';
import { acknowledgementRoutes } from './features/acknowledgements/routes.ts';
import { LiveProgress, type ProgressOptions } from './features/progress.ts';
import type { MessageRefs } from '../delivery/message-refs.ts';
import type { Notifier } from './notifier.ts';
import { Router } from './router.ts';
import type { Roster } from './roster.ts';
import { rosterRoutes } from './features/roster.ts';

export interface CoreServices {
  store: Store;
  directory: Directory;
  library: PolicyLibrary;
  notifier: Notifier;
  log: Logger;
  defaultSchool: string;
  policiesDir: string;
  /** Durable timers; when absent, unacknowledged alerts are not escalated by time (only on failure). */
  jobs?: JobScheduler;
  /** The durable outbox for proactive messages; when absent, features send directly through the notifier. */
  queue?: MessageQueue;
  /** Minutes before an unacknowledged child-protection alert escalates to deputies and the headteacher. */
  escalateAfterMinutes?: number;
  /** Base URL and secret of the signed "Read the policy" links. */
  publicUrl?: string;
  linkSecret?: string;
  /** The staff directory's roster sync ("sync staff"); the command is absent without it. */
  roster?: Roster;
  /** Where cards that change in place remember their messages (src/delivery/message-refs.ts). */
  messageRefs?: MessageRefs;
  /** How often and how long progress cards refresh themselves. */
  progress?: Partial<ProgressOptions>;
  /** Operational events (src/telemetry.ts); none when absent. */
  telemetry?: Telemetry;
}

export function createBot(services: CoreServices): { bot: Bot; router: Router; audit: AuditLog; incidents: IncidentService; cases: CaseBook; acks: AcknowledgementService } {
  const audit = new AuditLog(services.store);
  const cases = new CaseBook(services.store);
  const incidentDeps = { ...services, cases, audit, escalateAfterMinutes: services.escalateAfterMinutes ?? 15 };
  const incidents = new IncidentService(incidentDeps);
  incidents.registerJobs();
  // Broadcasts (acknowledgements, alerts, reminders) always go through a queue: the durable outbox
  // in the server, or direct sending where no outbox worker runs (the terminal chat).
  const queue = services.queue ?? new DirectQueue(services.notifier);
  const acks = new AcknowledgementService({ ...services, queue, audit, publicUrl: services.publicUrl ?? 'http://localhost:3978', linkSecret: services.linkSecret ?? 'local-development-only' });
  acks.registerJobs();
  const progress = new LiveProgress({ ...services, queue, acks, audit });
  progress.registerJobs();
  const qa = qaRoutes({ ...services, audit, incidentSteps: immediateStepsReplies });
  const ask = qa.find((route) => route.name === 'qa.ask')!;
  const router = new Router(ask);
  router.add(...coreRoutes(services), ...policyRoutes({ ...services, audit }), ...incidentRoutes(incidentDeps, incidents), ...acknowledgementRoutes({ ...services, acks, queue, audit, progress }), ...progress.routes(), ...qa);
  if (services.roster) router.add(...rosterRoutes({ roster: services.roster, audit }));
  const bot = new Bot({ store: services.store, directory: services.directory, router, defaultSchool: services.defaultSchool, log: services.log, messageRefs: services.messageRefs, telemetry: services.telemetry });
  return { bot, router, audit, incidents, cases, acks };
}
