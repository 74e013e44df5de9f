/**
 * Assembles the core: the router with every feature's routes, and the Bot around it. Knows nothing
 * of platforms; main.ts gives it the store and services.
 */
import type { Logger } from '../logger.ts';
import type { PolicyLibrary } from '../policies/library.ts';
import type { Store } from '../store/store.ts';
import { AuditLog } from './audit.ts';
import { Bot } from './bot.ts';
import type { Directory } from './directory.ts';
import { coreRoutes } from './features/core.ts';
import { immediateStepsReplies } from './features/immediate-steps.ts';
import { policyRoutes } from './features/policies.ts';
import { qaRoutes } from './features/qa.ts';
import { CaseBook } from './features/incidents/cases.ts';
import { IncidentService, incidentRoutes } from './features/incidents/routes.ts';
import type { JobScheduler } from '../delivery/types.ts';
import type { Notifier } from './notifier.ts';
import { Router } from './router.ts';

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
  /** Minutes before an unacknowledged child-protection alert escalates to deputies and the headteacher. */
  escalateAfterMinutes?: number;
}

export function createBot(services: CoreServices): { bot: Bot; router: Router; audit: AuditLog; incidents: IncidentService; cases: CaseBook } {
  const audit = new AuditLog(services.store);
  const cases = new CaseBook(services.store);
  const incidentDeps = { ...services, cases, audit, escalateAfterMinutes: services.escalateAfterMinutes ?? 15 };
  const incidents = new IncidentService(incidentDeps);
  incidents.registerJobs();
  const qa = qaRoutes({ ...services, audit, incidentSteps: immediateStepsReplies });
  const ask = qa.find((route) => route.name === 'qa.ask')!;
  const router = new Router(ask);
  router.add(...coreRoutes(services), ...policyRoutes({ ...services, audit }), ...incidentRoutes(incidentDeps, incidents), ...qa);
  const bot = new Bot({ store: services.store, directory: services.directory, router, defaultSchool: services.defaultSchool, log: services.log });
  return { bot, router, audit, incidents, cases };
}
