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
}

export function createBot(services: CoreServices): { bot: Bot; router: Router; audit: AuditLog } {
  const audit = new AuditLog(services.store);
  const qa = qaRoutes({ ...services, audit, incidentSteps: immediateStepsReplies });
  const ask = qa.find((route) => route.name === 'qa.ask')!;
  const router = new Router(ask);
  router.add(...coreRoutes(services), ...policyRoutes({ ...services, audit }), ...qa);
  const bot = new Bot({ store: services.store, directory: services.directory, router, defaultSchool: services.defaultSchool, log: services.log });
  return { bot, router, audit };
}
